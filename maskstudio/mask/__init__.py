"""maskstudio.mask"""
