"""``kaizen_agents.agents``: see ``kaizen_agents.agents.autonomous``."""
