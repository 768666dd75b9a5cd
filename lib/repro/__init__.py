"""Reproduction machinery: claims written before the run, arms × seeds, statistics, verdicts, results files."""
from .chapter import Chapter, Parameters, ParameterError, injected_names, resolve_parameters
from .claims import KINDS, SCALES, VERDICTS, Claim, ClaimsError, judge, judge_chapter, load_claims, measure_gates, parse_claims
from .stats import Comparison, compare, mean_ci
from .store import REPO_ROOT, environment, git_state, write_json_atomic

__all__ = ["Chapter", "Parameters", "ParameterError", "injected_names", "resolve_parameters", "KINDS", "SCALES",
           "VERDICTS", "Claim", "ClaimsError", "judge", "judge_chapter", "measure_gates", "load_claims", "parse_claims", "Comparison", "compare",
           "mean_ci", "REPO_ROOT", "environment", "git_state", "write_json_atomic"]
