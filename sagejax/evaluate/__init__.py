"""Host-side evaluation metrics: classification, presentation-attack detection, open-set protocols, saliency maps."""

from sagejax.evaluate.classification import (
    OneVsRestAUROC,
    accuracy,
    auroc,
    auroc_one_vs_rest,
    confusion_matrix,
)
from sagejax.evaluate.pad import EqualErrorRate, PADRates, apcer_at_bpcer, apcer_bpcer, equal_error_rate
from sagejax.evaluate.protocols import leave_one_attack_out_splits, summarize_results, to_json
from sagejax.evaluate.saliency_metrics import (
    METRICS,
    auc_borji,
    auc_judd,
    auc_shuffled,
    centre_bias_map,
    evaluate_saliency,
    information_gain,
    metrics_table,
    uniform_map,
)
from sagejax.evaluate.split_metrics import split_metrics

__all__ = [
    "METRICS",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "centre_bias_map",
    "evaluate_saliency",
    "information_gain",
    "metrics_table",
    "uniform_map",
    "EqualErrorRate",
    "OneVsRestAUROC",
    "PADRates",
    "accuracy",
    "apcer_at_bpcer",
    "apcer_bpcer",
    "auroc",
    "auroc_one_vs_rest",
    "confusion_matrix",
    "equal_error_rate",
    "leave_one_attack_out_splits",
    "split_metrics",
    "summarize_results",
    "to_json",
]
