"""Model families for the train step: each fits on the transformed train split and exports an ONNX graph.

Every family returns a `FittedModel` (`base.py`): its graph takes the transformed float matrix
(`features`, [N, n_features]) and yields the same output as the MLP's (probabilities [N, C] or
the prediction [N, 1]), so `onnx_model.merge` folds the preprocessing in front of any of them;
and the framework's own prediction on the validation rows, which the ONNX file is checked against.

- `mlp`: the PyTorch MLP, and any user `nn.Module`, trained by driftloop's loop (`torch_family`);
- `gbm`, `linear`: scikit-learn estimators converted with skl2onnx (`sklearn_family`);
- `auto`: the families within a time budget, the best on validation kept (`auto`);
- `train.module`: the user's function, loaded and checked (`user_code`), its model trained as either kind (`user_model`).
"""
