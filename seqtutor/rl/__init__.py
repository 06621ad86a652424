"""The RL layer: KL-control math, the algorithm table, and the TF-Agents policy, replay,
collection and agent that tune a pretrained sequence model. The only code that imports
``tf_agents``."""
