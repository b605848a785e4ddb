"""run/observe"""
