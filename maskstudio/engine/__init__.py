"""maskstudio.engine"""
