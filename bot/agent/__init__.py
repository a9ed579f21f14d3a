"""Agent: the self-learning DQN. The learner (`SelfLearningBot`, `DQNConfig`; the Q-network
in PyTorch, a numpy twin for inference), the vectorised training environment (`TradingEnv` over
`MarketData`, actions <-> target positions), the reward (`RewardSystem`), checkpoints and the
experience log. The DQN strategy (bot/strategies/dqn.py) is what the engine talks to.

It imports only analysis and the primitives; strategies, engine and research import it, so it
may import none of them (the parts form no circle). Names load on first use (PEP 562):
`import bot.agent` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.agent.environment import (
        LONG_ACTION,
        SHORT_ACTION,
        MarketData,
        TradingEnv,
        action_to_target,
        target_to_action,
    )
    from bot.agent.reward_system import RewardSystem
    from bot.agent.self_learning import DQNConfig, SelfLearningBot

__all__ = [
    "SelfLearningBot", "DQNConfig", "TradingEnv", "MarketData", "LONG_ACTION", "SHORT_ACTION",
    "action_to_target", "target_to_action", "RewardSystem",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "SelfLearningBot": "self_learning", "DQNConfig": "self_learning", "TradingEnv": "environment",
    "MarketData": "environment", "LONG_ACTION": "environment", "SHORT_ACTION": "environment",
    "action_to_target": "environment", "target_to_action": "environment",
    "RewardSystem": "reward_system",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
