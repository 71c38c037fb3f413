"""maskstudio.io"""
