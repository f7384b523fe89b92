"""What the seed study reports (Frank, "Deep Generative Models", UvA DL course, assignment 3): the
only numbers in the report that the run does not compute. Each is printed beside the run's own
value, with where the seed says it. Equilibrium values are derived, not typed: log 4 and log 2."""
from __future__ import annotations

from dataclasses import dataclass

from dgm.gan import EQUILIBRIUM_D_LOSS, EQUILIBRIUM_G_LOSS

FLOW_VALID_BPD = 1.83  # the seed's run: validation bits/dim after 40 epochs on 40,000 training images
COURSE_TARGET_BPD = 1.85  # the assignment asked for fewer bits/dim than this after 40 epochs


@dataclass(frozen=True)
class Reported:
    """One value the seed reports; ``field`` is the column of the model's metrics.csv to set beside it."""

    model: str
    quantity: str
    value: float
    shown: str  # as the seed writes it
    source: str
    field: str


REPORTED = (
    Reported("flow", "validation bits/dim after the last epoch", FLOW_VALID_BPD, "1.83 (text: 'around 1.8')",
             "§3.7, Fig. 7", "valid_bpd"),
    Reported("gan", "discriminator loss L_D at the end of training", EQUILIBRIUM_D_LOSS, "log 4",
             "§2.3 eq. 42, Fig. 5", "train_d_loss"),
    Reported("gan", "generator loss L_G at the end of training", EQUILIBRIUM_G_LOSS, "log 2 (printed as log 1/2)",
             "Fig. 5", "train_g_loss"),
    Reported("gan", "mean D(G(z)) at the end of training", 0.5, "1/2", "§2.3", "train_d_fake"),
)
