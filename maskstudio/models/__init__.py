"""maskstudio.models"""
