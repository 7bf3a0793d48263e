"""The suite's claims and the per-task report views, on hand-made result dicts."""

from __future__ import annotations

from rnnbench.models.families import FAMILIES
from rnnbench.report.claims import attention_claim, bidirectional_claim
from rnnbench.report.showcase import breakdown_tables, showcase_lines
from rnnbench.report.verdict import render_claim


def run(model: str, value: float, *, family="gru", bi=False, cell=None, attention=None,
        breakdowns=None, showcase=None, baseline=None, seed=0) -> dict:
    cfg = {"family": family, "hidden_size": 8, "num_layers": 1, "bidirectional": bi}
    if family == "seq2seq":
        cfg |= {"cell": cell, "attention": attention}
    fam = FAMILIES[family]
    return {"model": model, "seed": seed, "status": "ok", "metric": "accuracy", "solved": False,
            "facts": fam.facts(fam.config.model_validate(cfg)),
            "claims": ["bidirectional_future", "attention_long_inputs"],
            "higher_is_better": True, "test": {"accuracy": value}, "model_config": cfg,
            "baseline": baseline or {"name": "majority", "accuracy": 0.5},
            "breakdowns": breakdowns or {}, "showcase": showcase}


def verdict(claim) -> str:
    return next(line for line in render_claim(claim) if line.startswith("**Verdict"))


def test_bidirectional_claim_needs_a_win_over_the_causal_bound():
    base = {"name": "majority", "accuracy": 0.5, "accuracy_best_causal": 0.8}
    grouped = {"tagging": {"gru": [run("gru", 0.78, baseline=base)],
                           "bigru": [run("bigru", 0.99, bi=True, baseline=base)]}}
    assert "holds" in verdict(bidirectional_claim(grouped))
    grouped["tagging"]["bigru"] = [run("bigru", 0.79, bi=True, baseline=base)]
    assert "not observed" in verdict(bidirectional_claim(grouped))
    assert "no task" in verdict(bidirectional_claim({"tagging": {"gru": [run("gru", 0.7)]}}))


def test_attention_claim_reads_the_length_breakdown():
    def s2s(model, attention, curve):
        return [run(model, 0.5, family="seq2seq", cell="gru", attention=attention,
                    breakdowns={"exact match by input length": curve})]

    grouped = {"reverse": {
        "plain": s2s("plain", False, {"5": 0.9, "10": 0.6, "20": 0.1}),
        "attn": s2s("attn", True, {"5": 0.95, "10": 0.9, "20": 0.7})}}
    claim = attention_claim(grouped)
    assert "holds" in verdict(claim) and "0.100 at 20" in "\n".join(claim.evidence)
    grouped["reverse"]["attn"] = s2s("attn", True, {"5": 0.9, "10": 0.6, "20": 0.12})
    assert "not observed" in verdict(attention_claim(grouped))


def test_bidirectional_claim_is_decided_by_the_share_of_seeds_it_wins():
    base = {"name": "majority", "accuracy": 0.5, "accuracy_best_causal": 0.8}
    uni = [run("gru", 0.78, baseline=base, seed=s) for s in range(3)]

    def bi(*values):
        return [run("bigru", v, bi=True, baseline=base, seed=s) for s, v in enumerate(values)]

    # one lucky seed lifts the mean (0.86) past the margin and the bound, but wins 1 of 3
    lucky = bidirectional_claim({"tagging": {"gru": uni, "bigru": bi(0.99, 0.79, 0.79)}})
    assert "not observed" in verdict(lucky) and "won on 1/3 seeds" in "\n".join(lucky.evidence)
    two = bidirectional_claim({"tagging": {"gru": uni, "bigru": bi(0.99, 0.95, 0.79)}})
    assert "holds" in verdict(two) and "won on 2/3 seeds" in "\n".join(two.evidence)


def test_attention_claim_is_decided_by_the_share_of_seeds_it_wins():
    def s2s(model, attention, curves):
        return [run(model, 0.5, family="seq2seq", cell="gru", attention=attention, seed=s,
                    breakdowns={"exact match by input length": c}) for s, c in enumerate(curves)]

    plain = s2s("plain", False, [{"5": 0.9, "20": 0.1}] * 3)
    good, bad = {"5": 0.95, "20": 0.9}, {"5": 0.9, "20": 0.12}
    once = attention_claim({"reverse": {"plain": plain, "attn": s2s("attn", True,
                                                                      [good, bad, bad])}})
    assert "not observed" in verdict(once) and "won on 1/3 seeds" in "\n".join(once.evidence)
    twice = attention_claim({"reverse": {"plain": plain, "attn": s2s("attn", True,
                                                                       [good, good, bad])}})
    assert "holds" in verdict(twice)


def test_breakdown_table_and_figure(tmp_path):
    by_model = {"gru": [run("gru", 0.9, breakdowns={"accuracy by length": {"5": 1.0, "10": 0.8,
                                                                          "20": 0.5}}),
                        run("gru", 0.9, breakdowns={"accuracy by length": {"5": 0.8, "10": 0.6,
                                                                          "20": 0.3}})]}
    lines = breakdown_tables("reverse", by_model, tmp_path)
    assert "| gru | 0.9 | 0.7 | 0.4 |" in lines  # means over the two seeds
    assert (tmp_path / "breakdown_reverse_accuracy_by_length.png").exists()


def test_showcase_renders_text_and_attention(tmp_path):
    text = {"kind": "text", "title": "sampled text", "text": "def f():\n    return 1"}
    attn = {"kind": "attention", "title": "attention", "examples": [
        {"input": ["a", "b"], "output": ["b", "a", "<eos>"],
         "weights": [[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]}]}
    lines = showcase_lines("t", {"lstm": [run("lstm", 1, showcase=text)],
                                 "s2s": [run("s2s", 1, showcase=attn)],
                                 "none": [run("none", 1)]}, tmp_path)
    joined = "\n".join(lines)
    assert "```text\ndef f():\n    return 1\n```" in joined
    assert f"]({tmp_path.name}/attention_t_s2s.png)" in joined and "`ab` → `ba<eos>`" in joined
    assert "none" not in joined
