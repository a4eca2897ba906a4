"""Optimum (ONNX Runtime through transformers' API) on a textmaker ONNX export directory.

usage: python optimum_run.py EXPORT_DIR FILE_NAME TEXTS.json -> JSON probabilities on stdout.
Run by tests/export/test_optimum.py with the Python of a venv of its own (.venv-optimum): Optimum
pins a transformers older than textmaker's test environment's.
"""

import json
import sys

import torch
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer

directory, file_name, texts_path = sys.argv[1:4]
model = ORTModelForSequenceClassification.from_pretrained(directory, subfolder="onnx", file_name=file_name)
tokenizer = AutoTokenizer.from_pretrained(directory)
out = []
for text in json.load(open(texts_path, encoding="utf-8")):
    batch = tokenizer(text, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out.append(torch.softmax(model(**batch).logits, -1)[0].tolist())
print(json.dumps({"labels": [model.config.id2label[i] for i in range(len(out[0]))], "probabilities": out}))
