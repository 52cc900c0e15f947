"""Part `bf16`: the same PGD-10 crafted in bf16 autocast and in fp32; how often they differ.

The project runs attacks in fp32 (`mixup_robust/precision.py`) until a test shows bf16 gives
the same results; this part measures it. The classifier is the one the `recipe` part trained,
loaded from its last checkpoint as evaluations load it (`load_classifier`: fp32, not
compiled), on `points` seeded random test images of the real zip with their true labels; or,
when that part did not run or failed, a random-weight small CNN on random images (labels =
its clean predictions; then the figures only show the mechanics, and the record says so).

Per batch, `mixup_robust.attacks.PGD` (eps 8/255, step 2/255, random start) runs once on the
classifier and once on the same classifier under bf16 autocast (logits cast back to fp32),
both from the same seed, so the random start is the same. Recorded over the points done
(rewritten after every batch): the share of points whose adversarial images differ at all,
the share of pixel values that differ, the largest difference, the share of points whose
fp32 decision on the two adversarial images differs, the accuracy under each attack (scored
in fp32), the share of clean decisions that bf16 scoring changes, and each attack's seconds
(after one untimed batch).
"""

import torch
from common import build_net, calibrate_batch_norm, clock, random_images
from torch import nn

from gpu_parts.runner import Budget, PartLog
from mixup_robust.attacks import PGD
from mixup_robust.evaluation import load_classifier


class Bf16Logits(nn.Module):
    """`model` under bf16 autocast, its logits cast back to fp32."""

    def __init__(self, model: nn.Module, device_type: str) -> None:
        super().__init__()
        self.model, self.device_type = model, device_type

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(images).float()


class Bf16Part:
    """The part as a callable `(budget, log)`; reads the `recipe` part's model from `state`."""

    def __init__(self, points: int, batch: int, steps: int, device: torch.device, seed: int,
                 state: dict) -> None:  # fmt: skip
        self.points, self.batch, self.steps = points, batch, steps
        self.device, self.seed, self.state = device, seed, state

    def target(self) -> tuple[nn.Module, torch.Tensor, torch.Tensor, str]:
        """(classifier, images in [0, 1] on the device, labels, what they are)."""
        if "checkpoint" in self.state:
            images, labels = self.state["test"]
            # The test split is sorted by class: a seeded random subset covers every class.
            generator = torch.Generator().manual_seed(self.seed)
            chosen = torch.randperm(len(labels), generator=generator)[: self.points]
            x = images[chosen].to(self.device).float().div_(255)
            classifier = load_classifier(self.state["checkpoint"])[0].to(self.device)
            return (classifier, x, labels[chosen].to(self.device),
                    f"{self.state['recipe']}, {len(chosen)} random test images of the zip, "
                    "true labels")  # fmt: skip
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        model = build_net("small").to(self.device)
        images = random_images(self.points, generator, self.device)
        calibrate_batch_norm(model, images)
        with torch.no_grad():
            labels = model(images).argmax(1)
        return model, images, labels, "random-weight SmallCNN on random images (no recipe model)"

    def __call__(self, budget: Budget, log: PartLog) -> None:
        model, images, labels, source = self.target()
        model.eval().requires_grad_(False)
        log.info("model", source)
        log.info("attack", f"PGD-{self.steps}, eps 8/255, step 2/255, random start, batches "
                 f"of {self.batch}")  # fmt: skip
        attack = PGD(eps=8 / 255, step_size=2 / 255, steps=self.steps, random_start=True)
        ways = {"fp32": model, "bf16": Bf16Logits(model, self.device.type)}
        first = slice(0, self.batch)
        for way in ways.values():  # untimed: compilation, kernels, allocator
            attack(way, images[first], labels[first])
        done: dict[str, list[torch.Tensor]] = {"fp32": [], "bf16": [], "x": [], "y": []}
        seconds = dict.fromkeys(ways, 0.0)
        for start in range(0, len(labels), self.batch):
            x, y = images[start : start + self.batch], labels[start : start + self.batch]
            for name, way in ways.items():
                torch.manual_seed(self.seed + start)  # the same random start both ways
                adversarial, elapsed = clock(lambda w=way, x=x, y=y: attack(w, x, y), self.device)
                done[name].append(adversarial)
                seconds[name] += elapsed
            done["x"].append(x)
            done["y"].append(y)
            self.compare(log, model, ways["bf16"], done, seconds)
            if start + self.batch < len(labels) and budget.expired():
                return

    @staticmethod
    @torch.no_grad()
    def compare(log: PartLog, model: nn.Module, bf16: nn.Module, done: dict, seconds: dict):
        full, half = torch.cat(done["fp32"]), torch.cat(done["bf16"])
        x, y = torch.cat(done["x"]), torch.cat(done["y"])
        differ = (full != half).flatten(1)
        decide_full, decide_half = model(full).argmax(1), model(half).argmax(1)
        clean_full, clean_half = model(x).argmax(1), bf16(x).argmax(1)
        figures = {
            "points": len(y),
            "adversarial examples that differ (share of points)": differ.any(1).float().mean(),
            "pixel values that differ (share)": differ.float().mean(),
            "largest difference (x 255)": (full - half).abs().max() * 255,
            "decisions on them that differ (share, fp32 scoring)":
                (decide_full != decide_half).float().mean(),
            "accuracy under the fp32 attack": (decide_full == y).float().mean(),
            "accuracy under the bf16 attack": (decide_half == y).float().mean(),
            "clean accuracy (fp32)": (clean_full == y).float().mean(),
            "clean decisions that bf16 scoring changes (share)":
                (clean_full != clean_half).float().mean(),
            "fp32 attack s": seconds["fp32"], "bf16 attack s": seconds["bf16"],
        }  # fmt: skip
        log.entry["tables"]["bf16 vs. fp32"] = [
            {"figure": key, "value": float(value)} for key, value in figures.items()
        ]
        log.say(f"[bf16] {len(y)} points: " + ", ".join(
            f"{key} {float(value):.4g}" for key, value in list(figures.items())[1:4]))  # fmt: skip
        log.recorder.save()
