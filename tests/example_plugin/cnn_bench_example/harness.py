"""A cnn-bench harness plugin: a class with ``name`` and ``measure(job)``; nothing imported
from cnn-bench. It measures how far the model's outputs move when its input is nudged."""


class OutputSensitivity:
    """Mean absolute change of the outputs when every input value moves by ``--nudge``."""

    name = "sensitivity"

    @staticmethod
    def add_arguments(group):
        group.add_argument("--nudge", type=float, default=1e-3,
                           help="how far each input value moves (default: 1e-3)")  # fmt: skip
        group.add_argument("--sensitivity-fail", action="store_true",
                           help="raise on purpose (to see a failure become an error row)")  # fmt: skip

    @staticmethod
    def preflight(config):
        if not config["nudge"] > 0:
            raise ValueError("--nudge must be positive")

    def measure(self, job):
        import torch

        if job.config.get("sensitivity_fail"):
            raise RuntimeError(f"sensitivity refuses {job.spec.name} on purpose")
        model = job.model()
        x = job.example_input(2)
        with torch.no_grad():
            moved = (model(x + job.config["nudge"]) - model(x)).abs().mean().item()
        return [
            {
                "config": {"nudge": job.config["nudge"], "img_size": job.input_size[1]},
                "metrics": {"output_sensitivity": moved},
            }
        ]
