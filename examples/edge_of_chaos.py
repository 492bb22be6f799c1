"""Mean-field theory: the tanh critical line and what depth a given init can train.

Run: python examples/edge_of_chaos.py
"""

import initwise.theory as th


def main() -> None:
    for sigma_b in (0.0, 0.05, 0.2, 0.5):
        sigma_w = th.edge_of_chaos("tanh", sigma_b)
        print(f"tanh, sigma_b={sigma_b:<5} edge of chaos at sigma_w={sigma_w:.4f}")
    for sigma_w in (0.5, 1.0, 1.5, 3.0):
        phase = th.phase("tanh", sigma_w=sigma_w, sigma_b=0.05)
        depth = th.max_trainable_depth("tanh", sigma_w=sigma_w, sigma_b=0.05)
        print(f"sigma_w={sigma_w}: {phase}, trainable to about {depth:.0f} layers")


if __name__ == "__main__":
    main()
