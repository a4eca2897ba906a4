"""A saved model directory that is a Hugging Face model directory as well as textmaker's.

transformers reads config.json's top-level BertConfig keys, `architectures`, `id2label`
and the weights' names (`bert.*`, `classifier.*`, `qa_outputs.*`); textmaker's own
settings sit beside them under keys transformers ignores. The same tables read a
directory fine-tuned with transformers (BertForSequenceClassification or
BertForQuestionAnswering) back into a textmaker task, and directories saved by
textmaker 0.1 (`backbone` nested, `backbone.*` weights) still load.
"""

from __future__ import annotations

from textmaker.errors import TextmakerError

ARCHITECTURES = {"text_classifier": "BertForSequenceClassification",
                 "question_answerer": "BertForQuestionAnswering"}
TASK_OF = {arch: task for task, arch in ARCHITECTURES.items()}
OWN_PREFIX, HF_PREFIX = "backbone.", "bert."


def task_of(config: dict) -> str | None:
    """The task a config.json holds: textmaker's `task`, or a transformers architecture it can run."""
    if isinstance(config.get("task"), str):
        return config["task"]
    for arch in config.get("architectures") or []:
        if arch in TASK_OF and config.get("model_type") == "bert":
            return TASK_OF[arch]
    return None


def config_json(task: str, backbone: dict, settings: dict, label_names: list[str] | None) -> dict:
    """config.json: BertConfig's keys at the top level for BERT (the word-embedding model, which
    transformers cannot run, keeps its shape under `backbone`), textmaker's settings beside them."""
    if backbone.get("model_type") != "bert":
        return {"backbone": backbone, **settings}
    out = {**backbone, "architectures": [ARCHITECTURES[task]]}
    if label_names is not None:
        out.update(id2label={str(i): name for i, name in enumerate(label_names)},
                   label2id={name: i for i, name in enumerate(label_names)},
                   problem_type="single_label_classification")
    return {**out, **settings}


def backbone_of(config: dict) -> dict:
    """The encoder's shape from any of the three layouts."""
    if "backbone" in config:
        return config["backbone"]
    if config.get("model_type") != "bert":
        raise TextmakerError("config.json: no encoder settings (model_type bert, or backbone)")
    return config


def label_names_of(config: dict) -> list[str] | None:
    """textmaker's label_names, else transformers' id2label in id order."""
    if isinstance(config.get("label_names"), list):
        return config["label_names"]
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    return None


def to_hf_names(state: dict, bert: bool) -> dict:
    if not bert:
        return state
    return {HF_PREFIX + k[len(OWN_PREFIX):] if k.startswith(OWN_PREFIX) else k: v for k, v in state.items()}


def from_hf_names(state: dict) -> dict:
    """Weights as textmaker's modules name them (position_ids is a buffer transformers may save)."""
    return {OWN_PREFIX + k[len(HF_PREFIX):] if k.startswith(HF_PREFIX) else k: v for k, v in state.items()
            if not k.endswith("position_ids")}
