"""maskstudio.training"""
