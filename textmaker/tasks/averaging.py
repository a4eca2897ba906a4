"""One model from several fine-tuned ones: the mean of their weights (a "model soup", Wortsman et
al., 2022), scored on held-out data, and the training of the seeds that feed it.

Task.average and Task.create_averaged are the API; this module is their body.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Sequence

from textmaker import distributed, presets
from textmaker.errors import TextmakerError


def average(cls, models: Sequence, names: Sequence[str] | None, check, greedy: bool):
    models = list(models)
    names = list(names) if names is not None else [f"model {i + 1}" for i in range(len(models))]
    if len(names) != len(models):  # zip would drop the unnamed members without a word
        raise TextmakerError(f"{len(names)} names for {len(models)} models: give one name per model")
    if len(models) < 2:
        raise TextmakerError("averaging needs at least two trained models")
    if greedy and check is None:
        raise TextmakerError("a greedy average needs held-out data to check each member on (check=, --check)")
    _check_members(cls, models, names)
    if check is None:
        return _mean(models, names)
    if greedy:
        return _greedy(models, names, check)[0]
    averaged = _mean(models, names)
    metric = averaged.key_metric
    members = [{"model": name, "score": m.evaluate(check)[metric]} for m, name in zip(models, names)]
    score = averaged.evaluate(check)[metric]
    best = max(members, key=lambda m: m["score"])
    if score < best["score"]:
        raise TextmakerError(f"{check.source}: the average's {metric} {_shown(metric, score)} is below "
                             f"{best['model']}'s {_shown(metric, best['score'])}; keep {best['model']}, average "
                             f"greedily (--greedy) or without the check")
    averaged.config["averaged_check"] = {"data": check.source, "metric": metric, "members": members,
                                         "average": score}
    return averaged


def _shown(metric: str, value: float) -> str:
    return f"{100 * value:.2f}%" if metric == "accuracy" else f"{value:.2f}"


def _check_members(cls, models: list, names: list[str]) -> None:
    """Members that cannot be averaged, refused by name before any arithmetic."""
    first = models[0]
    for m, name in zip(models, names):
        if not isinstance(m, cls) or type(m) is not type(first):
            raise TextmakerError(f"{name} is a {type(m).__name__}, not a {type(first).__name__} like {names[0]}")
        if m.network is None:
            raise TextmakerError(f"{name} is an export; average the trained model directories instead")
        if presets.PRESETS.get(m.config.get("base_model"), {}).get("source") in ("random", "awe"):
            raise TextmakerError(f"{name} was trained from random weights ({m.config['base_model']}): models "
                                 f"from different random starts do not average; average fine-tuned encoders")
        if m.preprocessor.config() != first.preprocessor.config() or \
                m.preprocessor.tokenizer.to_json() != first.preprocessor.tokenizer.to_json():
            raise TextmakerError(f"{name}'s tokenizer differs from {names[0]}'s: only models fine-tuned from one "
                                 f"encoder with one tokenizer and seq_len average")
        if getattr(m, "label_names", None) != getattr(first, "label_names", None):
            raise TextmakerError(f"{name} has the labels {m.label_names}, {names[0]} {first.label_names}: "
                                 f"members must be trained on the same labels")
    shapes = {k: tuple(v.shape) for k, v in first.network.state_dict().items()}
    for m, name in zip(models[1:], names[1:]):
        other = {k: tuple(v.shape) for k, v in m.network.state_dict().items()}
        if other != shapes:
            key = next(k for k in sorted(set(shapes) | set(other)) if shapes.get(k) != other.get(k))
            raise TextmakerError(f"{name}'s weights differ from {names[0]}'s ({key}: {other.get(key)} against "
                                 f"{shapes.get(key)}): members must share one architecture")


def _mean(models: list, names: list[str]):
    """The members' mean weights in a copy of the first member (its settings and verification sample)."""
    from textmaker.models.runner import TorchRunner

    first = models[0]
    states = [m.network.state_dict() for m in models]
    mean = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            mean[k] = (sum(s[k].double() for s in states) / len(states)).to(v.dtype)
        else:  # integer buffers (position ids) are the same in every member
            mean[k] = v.clone()
    network = copy.deepcopy(first.network)
    network.load_state_dict(mean)
    averaged = copy.copy(first)
    averaged.network, averaged.runner = network.eval(), TorchRunner(network, first.runner.device)
    averaged.history, averaged.metrics = [], {}
    averaged.config = {**first.config, "averaged_from": [
        {"model": name, "seed": m.config.get("training", {}).get("seed")} for m, name in zip(models, names)]}
    averaged.config.pop("averaged_check", None)
    averaged.config.pop("member_recipe", None)  # the average was not trained by one command
    if "verification_sample" in first.config:  # say so where an export's check reports it
        origin = first.config["verification_sample"].get("origin", "the verification sample")
        averaged.config["verification_sample"] = {**first.config["verification_sample"],
                                                  "origin": f"{origin} for {names[0]} only"}
    return averaged


def _greedy(models: list, names: list[str], data, reports: list[dict] | None = None):
    """The greedy soup: members best first, each kept if the average with it scores no lower.
    reports: the members' reports on `data` where already known. Returns the model and its report."""
    metric = models[0].key_metric
    reports = reports or [m.evaluate(data) for m in models]
    scores = [r[metric] for r in reports]
    order = sorted(range(len(models)), key=lambda i: -scores[i])  # ties keep the given order
    kept, chosen, report = [order[0]], models[order[0]], reports[order[0]]
    best, tried = scores[order[0]], {}
    for i in order[1:]:
        trial = _mean([models[j] for j in kept + [i]], [names[j] for j in kept + [i]])
        trial_report = trial.evaluate(data)
        tried[i] = trial_report[metric]
        if tried[i] >= best:
            kept, best, chosen, report = kept + [i], tried[i], trial, trial_report
    if len(kept) == 1:  # no average helped: the best member as it is, with the record of why
        chosen = copy.copy(chosen)
        chosen.config = {**{k: v for k, v in chosen.config.items() if k != "member_recipe"}, "averaged_from": [
            {"model": names[kept[0]], "seed": chosen.config.get("training", {}).get("seed")}]}
    chosen.config["averaged_check"] = {
        "data": data.source, "metric": metric, "greedy": True, "average": best,
        "members": [{"model": names[i], "score": scores[i], "kept": i in kept,
                     **({"score_with": tried[i]} if i in tried else {})} for i in range(len(models))]}
    return chosen, report


def check_seeds(seeds: Sequence[int], flag: str = "seeds") -> list[int]:
    """Two or more distinct integer seeds, or one line naming the flag."""
    seeds = list(seeds)
    if len(seeds) < 2:
        raise TextmakerError(f"{flag}: give two or more seeds to average, e.g. 0,1,2 (one seed is --seed)")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise TextmakerError(f"{flag}: seeds are whole numbers from 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise TextmakerError(f"{flag}: {seeds} repeats a seed; a seed trains the same model twice")
    return seeds


def train_seeds(cls, train_data, validation_data, seeds: Sequence[int], members_dir, resume: bool, options: dict):
    """Task.create_averaged's body: each seed's member trained (or, resuming, loaded), then averaged."""
    seeds = check_seeds(seeds)
    for reserved in ("seed", "checkpoint_dir"):
        if reserved in options:
            raise TextmakerError(f"create_averaged sets {reserved} for each member itself; leave it out")
    recipe = _recipe(train_data, validation_data, options)
    members, names = [], []
    for n, seed in enumerate(seeds, 1):
        where = Path(members_dir) / f"seed{seed}" if members_dir is not None else None
        if options.get("progress", True) and distributed.is_main():
            print(f"seed {seed}: member {n} of {len(seeds)}" + (f" ({where})" if where else ""), file=sys.stderr)
        if resume and where is not None and (where / "config.json").is_file():
            member = _finished_member(cls, where, seed, options, recipe)
        else:
            checkpoints = where / "checkpoints" if where is not None else None
            started = checkpoints is not None and (checkpoints / "trainer_state.json").is_file()
            member = cls.create(train_data, validation_data, seed=seed, checkpoint_dir=checkpoints,
                                resume=resume and started, **options)
            member.config["member_recipe"] = recipe
            if where is not None:
                member.save(where)
        members.append(member)
        names.append(str(where) if where is not None else f"seed {seed}")
    _check_members(cls, members, names)
    if validation_data is None:
        return _mean(members, names)
    # each member was scored on the validation data at the end of its training (metrics.json)
    known = [m.metrics.get("validation") for m in members]
    averaged, report = _greedy(members, names, validation_data, known if all(known) else None)
    averaged.metrics = {"validation": report}
    if "verification_sample" in members[0].config:  # the validation data, held out of every member alike
        averaged.config["verification_sample"] = members[0].config["verification_sample"]
    return averaged


# Training settings a finished member must share with the resumed command, where it names them.
MEMBER_SETTINGS = ("epochs", "batch_size", "learning_rate", "gradient_accumulation_steps", "max_steps",
                   "frozen_layers", "precision")


def _recipe(train_data, validation_data, options: dict) -> str:
    """What every member of one command is trained from: the data (texts, labels, label order) and
    the options, as a short hash kept in each member's config.json."""
    h = hashlib.sha256()
    shown = {k: v for k, v in options.items() if k != "progress"}
    h.update(json.dumps(shown, sort_keys=True, default=str).encode())
    for data in (train_data, validation_data):
        if data is not None:
            h.update(json.dumps(getattr(data, "label_names", None)).encode())
            for record in data.to_records():
                h.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _finished_member(cls, where: Path, seed: int, options: dict, recipe: str):
    """A member saved by an earlier run of the same command; one trained otherwise is refused."""
    member = cls.load(where)
    training = member.config.get("training", {})
    asked = {"seed": seed, **{k: options[k] for k in MEMBER_SETTINGS if options.get(k) is not None}}
    for key, value in asked.items():  # named, where the difference is a setting the command names
        if key in training and training[key] != value:
            raise TextmakerError(f"{where}: holds a model trained with {key} {training[key]}, not {value}; resume "
                                 f"with the same settings, or train afresh (--overwrite)")
    if member.config.get("member_recipe", recipe) != recipe:  # members saved before the recipe: as checked above
        raise TextmakerError(f"{where}: holds a model trained on other data or with other options than this "
                             f"command's; resume with the same data and options, or train afresh (--overwrite)")
    return member
