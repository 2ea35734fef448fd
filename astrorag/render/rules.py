"""Rules for the terminal: one line in a list, or one rule whole with its papers for and against."""

from __future__ import annotations


def rule_line(rule) -> str:
    """One rule in a list: id, origin, confidence, whether contested, what it says."""
    flag = " CONTESTED" if rule.contested else ""
    return f"{rule.rule_id:<28} {rule.origin:<9} {rule.confidence:.2f}{flag}  {rule.describe()}"


def rule_text(rule) -> str:
    """One rule whole: its confidence and where it came from, why, and the papers for and against."""
    lines = [f"{rule.rule_id} ({rule.origin}, confidence {rule.confidence:.2f}: prior {rule.prior_confidence:.2f}, "
             f"{rule.successes} fits improved, {rule.failures} not; found {rule.support_count}x)",
             f"  {rule.describe()}", f"  why: {rule.rationale}"]
    if rule.supports:
        lines.append(f"  points to: {', '.join(rule.supports)}")
    lines.append(f"  papers for: {rule.cite(rule.citations) or '(fit outcomes only)'}")
    if rule.contested:
        lines += [f"  CONTESTED: papers against: {rule.cite(rule.contradicted_by)}", f"    they argue: {rule.dissent}"]
    if rule.superseded_by:
        lines.append(f"  SUPERSEDED: {rule.superseded_by}")
    return "\n".join(lines)
