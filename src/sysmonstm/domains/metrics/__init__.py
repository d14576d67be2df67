"""System monitoring: psutil collectors, host rules, the fleet dashboard."""
