"""TFLite Model Metadata, written by MediaPipe's own metadata writers.

The metadata is what lets an app's runtime use the file with nothing of textmaker:
MediaPipe Tasks' TextClassifier (Android, iOS, web, Python) and TFLite Task Library's
BertNLClassifier / BertQuestionAnswerer read from it which input is which, how to
tokenize (a BertTokenizer unit carrying vocab.txt, or a RegexTokenizer unit with its
delimiter and "word id" vocabulary) and the label names of the output.

mediapipe 1.2.2's wheel lacks one compiled helper its metadata populator imports
(`_pywrap_metadata_version`, which computes the metadata's minimum parser version).
Where it is missing we provide it: `minimum_parser_version` below follows MediaPipe's
metadata_version.cc rule for rule. Everything else is MediaPipe's code.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import types
from pathlib import Path

from textmaker.errors import TextmakerError
from textmaker.export.job import Job
from textmaker.io import read_lines

_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def require_mediapipe() -> None:
    if importlib.util.find_spec("mediapipe") is None:
        raise TextmakerError("TFLite export writes MediaPipe's model metadata, which needs the tflite extra: "
                             "pip install 'textmaker[tflite]'")


def minimum_parser_version(metadata: bytes) -> str:
    """The oldest metadata parser that reads every field this metadata uses (metadata_version.cc)."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    md = fb.ModelMetadataT.InitFromPackedBuf(bytearray(metadata), 0)
    version = (1, 0, 0)

    def need(v: tuple[int, int, int]) -> None:
        nonlocal version
        version = max(version, v)

    def files(items) -> None:
        for f in items or []:
            if f.type == fb.AssociatedFileType.VOCABULARY:
                need((1, 0, 1))
            if f.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                need((1, 4, 0))
            if f.version is not None:
                need((1, 4, 1))

    def units(items) -> None:
        for u in items or []:
            if u.optionsType in (fb.ProcessUnitOptions.BertTokenizerOptions,
                                 fb.ProcessUnitOptions.SentencePieceTokenizerOptions):
                need((1, 1, 0))
            if u.optionsType == fb.ProcessUnitOptions.RegexTokenizerOptions:
                need((1, 2, 1))

    for sg in md.subgraphMetadata or []:
        for t in (sg.inputTensorMetadata or []) + (sg.outputTensorMetadata or []):
            files(t.associatedFiles)
            units(t.processUnits)
            if t.content is not None and t.content.contentPropertiesType == fb.ContentProperties.AudioProperties:
                need((1, 3, 0))
        files(sg.associatedFiles)
        for present, v in ((sg.inputProcessUnits, (1, 1, 0)), (sg.outputProcessUnits, (1, 1, 0)),
                           (sg.inputTensorGroups, (1, 2, 0)), (sg.outputTensorGroups, (1, 2, 0)),
                           (sg.customMetadata, (1, 5, 0))):
            if present is not None:
                need(v)
        units(sg.inputProcessUnits)
        units(sg.outputProcessUnits)
    files(md.associatedFiles)
    return ".".join(map(str, version))


def _provide_version_helper() -> None:
    try:
        __import__(_VERSION_MODULE)
        return
    except ImportError:
        pass
    parts = _VERSION_MODULE.split(".")
    for i in range(3, len(parts)):  # mediapipe.tasks.cc ... python: namespace stand-ins
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    module = types.ModuleType(_VERSION_MODULE)
    module.GetMinimumMetadataParserVersion = minimum_parser_version
    sys.modules[_VERSION_MODULE] = module


def _writers():
    require_mediapipe()
    _provide_version_helper()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    return metadata_writer, writer_utils


def _tensor(names: list[str], name: str) -> str:
    """The file's tensor for a signature name (litert-torch writes serving_default_<name>[_output])."""
    for candidate in (f"serving_default_{name}", f"serving_default_{name}:0", f"serving_default_{name}_output",
                      f"serving_default_{name}_output:0", name):
        if candidate in names:
            return candidate
    raise TextmakerError(f"the converted file has no tensor for {name!r} (it has {names}); this is a bug")


def add_metadata(model: bytes, job: Job) -> bytes:
    """The model with its metadata and associated files (vocab.txt, labels.txt) inside."""
    mw, utils = _writers()
    vocab = str(job.directory / "vocab.txt")
    writer = mw.MetadataWriter.create(bytearray(model))
    inputs = utils.get_input_tensor_names(bytearray(model))
    if job.task == "text_classifier":
        writer.add_general_info("TextClassifier", "Classifies text into the categories it was trained on "
                                                  "(textmaker).")
        if "ids" in job.signature.inputs and len(job.signature.inputs) == 1:
            from textmaker.text.words import DELIMITER

            writer.add_regex_text_input(mw.RegexTokenizer(DELIMITER, vocab), name="ids",
                                        description="Word ids: <START>, then each word's id, then <PAD>.")
        else:
            writer.add_bert_text_input(mw.BertTokenizer(vocab), *(_tensor(inputs, n) for n in
                                                                  ("ids", "mask", "segment_ids")))
        labels = mw.Labels().add(read_lines(job.directory / "labels.txt"))
        writer.add_classification_output(labels, name="probability",
                                         description="Probability of each label, in labels.txt order.")
    else:
        writer.add_general_info("BertQuestionAnswerer", "Finds the answer span of a question in a context "
                                                        "(textmaker).")
        writer.add_bert_text_input(mw.BertTokenizer(vocab), *(_tensor(inputs, n) for n in
                                                              ("ids", "mask", "segment_ids")))
        outputs = utils.get_output_tensor_names(bytearray(model))
        order = sorted(job.signature.outputs, key=lambda n: outputs.index(_tensor(outputs, n)))
        for name in order:  # output metadata pairs with the file's outputs by position
            writer.add_feature_output(name=name, description=f"{name.split('_')[0].title()} logit of each token.")
    content, _ = writer.populate()
    # MediaPipe's writer removes its temporary folder in __del__; collect it now, not at interpreter exit
    # (where its cleanup fails noisily).
    del writer
    gc.collect()
    return bytes(content)


def read_metadata_json(path: Path) -> dict:
    """The metadata of a .tflite file as MediaPipe's displayer reads it back."""
    import json

    _writers()
    from mediapipe.tasks.python.metadata import metadata

    displayer = metadata.MetadataDisplayer.with_model_file(str(path))
    return {"metadata": json.loads(displayer.get_metadata_json()),
            "files": displayer.get_packed_associated_file_list()}
