"""The long-running services: aggregator, rules, gateway, and ``up`` which runs them all."""
