"""maskstudio.ui"""
