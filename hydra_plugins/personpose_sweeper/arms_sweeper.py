"""Hydra's basic sweeper with arms: a grid that is not a full product (a Hydra plugin: Hydra
instantiates sweepers only from the ``hydra_plugins`` namespace package).

``hydra/sweeper=arms`` (``conf/hydra/sweeper/arms.yaml``) runs every arm (a list of
overrides, e.g. ``[loss=part_ssim, loss.adversarial.enabled=false]``) times the product of
``params`` and the command line's sweeps (e.g. ``seed=0,1,2``), so a study of 7 loss
configurations x 3 seeds is 21 jobs, not the 10 x 3 of a product of ``loss`` and
``loss.adversarial.enabled``. A key given on the command line (or in ``params``) replaces the
arms' value of that key, and arms that become the same job run once. Without arms it is the
basic sweeper.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from hydra.plugins.sweeper import Sweeper


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


class ArmsSweeper(BasicSweeper):
    """:class:`BasicSweeper` run once per arm.

    Args:
        max_batch_size: jobs launched at once (None: all), as in the basic sweeper.
        params: sweeps of the product, ``{key: "v1,v2"}``, as in the basic sweeper.
        arms: lists of overrides, one list per arm; each job is an arm plus one element of
            the product. Empty: the basic sweeper.
    """

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        arms: Sequence[Sequence[str]] = (),
    ) -> None:
        # BasicSweeper.__init__ calls super(BasicSweeper, self), which fails once Hydra's plugin
        # scan has executed its module again (a new class object): set its attributes here
        Sweeper.__init__(self)
        self.max_batch_size, self.params = max_batch_size, dict(params or {})
        self.overrides, self.batch_index = None, 0
        self.hydra_context = self.config = self.launcher = None
        self.arms = [list(arm) for arm in arms]
        for i, arm in enumerate(self.arms):
            if not arm or not all(isinstance(o, str) and "=" in o for o in arm):
                raise ValueError(
                    f"hydra.sweeper.arms[{i}]: {arm!r}; expected a non-empty list of "
                    "key=value overrides, e.g. [loss=part_ssim, loss.adversarial.enabled=false]"
                )

    def split_arguments(  # an instance method: BasicSweeper.sweep calls it through self
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        """Batches of jobs (each a list of overrides): every arm times the product."""
        product = BasicSweeper.split_arguments(overrides, None)[0]
        if not self.arms:
            jobs = product
        else:
            given = {o.key_or_group for o in overrides}  # the command line wins
            arms = dict.fromkeys(tuple(o for o in arm if _key(o) not in given) for arm in self.arms)
            jobs = [[*arm, *job] for arm in arms for job in product]
        n = len(jobs) if max_batch_size is None else max_batch_size
        return [jobs[i : i + n] for i in range(0, len(jobs), n)]
