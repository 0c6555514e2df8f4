"""Parameter matching (a grid's `match_params: true`): the conditioning mechanisms (or models) of a grid
compared at equal model size, so that one cannot win by having more weights.

Cells that differ only in their conditioning mode, model (and its options) and seed form a group. Every
member of a group is widened, through the cell field `width_scale` (all hidden widths of the mlp or conv
backbone times a factor, rounded), until its parameter count is within MATCH_TOLERANCE of the group's largest model.
"""

from __future__ import annotations

from benchmark.config import VQ_FIELDS, CellConfig
from benchmark.errors import BenchError
from benchmark.models.cost import parameter_count_of

MATCH_TOLERANCE = 0.02  # relative difference in parameters allowed between the mechanisms of a group
SCALE_STEP = 1000  # width_scale is searched on a grid of 1/SCALE_STEP: short ids, counts 0.1% apart at most
MAX_SCALE = 8.0


def _shape(config: CellConfig) -> CellConfig:
    """What decides a model's size, less the conditioning mode and the model (cvae, ae, vqvae with its
    codebook and prior options): the key of a matching group. A VQ-VAE's count includes its codebook and
    its code prior; an autoencoder's fitted code density is statistics, not parameters."""
    fields = type(config).model_fields
    sizeless = {name: fields[name].default for name in (*VQ_FIELDS, "beta", "kl_warmup_epochs")}
    return config.model_copy(
        update={"conditioning": "none", "model": "cvae", "seed": 0, "width_scale": 1.0, **sizeless}
    )


def _check_models_share_groups(configs: list[CellConfig], source: str) -> None:
    """Two models of a grid whose cells differ only in a field one of them ignores (a CVAE's conditional
    prior, which the autoencoder has none of; a latent_dim the VQ-VAE ignores) would be matched in two
    groups, each to its own largest: an error, not a silent split."""
    loose: dict[CellConfig, dict[CellConfig, set[str]]] = {}
    for config in configs:
        key = _shape(config).model_copy(update={"prior": "standard", "latent_dim": 16})
        loose.setdefault(key, {}).setdefault(_shape(config), set()).add(config.model)
    for groups in loose.values():
        (a, models_a), *rest = groups.items()
        for b, models_b in rest:
            if models_a == models_b:
                continue  # every model at both values: a split the grid asks for (latent 8 and 32)
            differ = [f for f in ("prior", "latent_dim") if getattr(a, f) != getattr(b, f)]
            raise BenchError(
                f"{source}: match_params: {' and '.join(differ)} is {_values(a, differ)} for models "
                f"{', '.join(sorted(models_a))} but {_values(b, differ)} for {', '.join(sorted(models_b))} (a field "
                "some models ignore), so they cannot be matched to one size; drop match_params or that setting"
            )


def _values(config: CellConfig, names: list[str]) -> str:
    return "/".join(str(getattr(config, name)) for name in names)


def matched_scale(config: CellConfig, target: int) -> float:
    """The width_scale >= 1 whose parameter count is closest to target (smallest such scale on ties)."""

    def count(step: int) -> int:
        return parameter_count_of(config.model_copy(update={"width_scale": step / SCALE_STEP}))

    low, high = SCALE_STEP, int(MAX_SCALE * SCALE_STEP)
    if count(high) < target:
        return high / SCALE_STEP
    while low < high:  # smallest step whose count reaches the target (counts grow with the scale)
        mid = (low + high) // 2
        low, high = (mid + 1, high) if count(mid) < target else (low, mid)
    best = min((low - 1, low), key=lambda step: (abs(count(step) - target), step)) if low > SCALE_STEP else low
    return best / SCALE_STEP


def match_parameters(configs: list[CellConfig], source: str) -> list[CellConfig]:
    """The configs with width_scale set so that each group's mechanisms match its largest within 2%."""
    from benchmark.models.backbones import BACKBONES

    for config in configs:
        if "width_scale" in BACKBONES[config.backbone].ignores:
            raise BenchError(
                f"{source}: match_params: backbone {config.backbone!r} has fixed widths and cannot be widened; "
                "match_params needs the mlp or conv backbone"
            )
    _check_models_share_groups(configs, source)
    targets: dict[CellConfig, int] = {}
    for config in configs:
        key = _shape(config)
        targets[key] = max(targets.get(key, 0), parameter_count_of(config.model_copy(update={"width_scale": 1.0})))
    matched = []
    for config in configs:
        target = targets[_shape(config)]
        scaled = config.model_copy(update={"width_scale": matched_scale(config, target)})
        count = parameter_count_of(scaled)
        if abs(count - target) > MATCH_TOLERANCE * target:
            raise BenchError(
                f"{source}: match_params: {config.backbone}/{config.model}/{config.conditioning} reaches {count:,} "
                f"parameters at width_scale {scaled.width_scale}, not within {MATCH_TOLERANCE:.0%} of {target:,}"
            )
        matched.append(scaled)
    return matched
