"""Human chains: the whole pipeline without a teacher."""

import pytest

from socratic.core.errors import SocraticError
from socratic.core.records import Chain
from socratic.tasks import gsm8k, strategyqa, svamp
from socratic.teacher.human import NOT_ALIGNED, human_chain


def test_gsm8k_socratic_and_cot():
    problems = gsm8k.load("train")
    socratic = [human_chain(p, "socratic") for p in problems]
    assert all(isinstance(c, Chain) and c.correct and c.source == "human" for c in socratic)
    assert socratic[0].steps == problems[0].human_steps and socratic[0].final_answer == "72"
    cot = human_chain(problems[0], "cot")
    assert [s.question for s in cot.steps] == ["", ""]
    assert cot.steps[0].answer == problems[0].human_steps[0].answer


def test_strategyqa_pairs_facts_only_where_they_align():
    outcomes = [human_chain(p, "socratic") for p in strategyqa.load("train")]
    kept = [o for o in outcomes if isinstance(o, Chain)]
    assert len(kept) == 762 and outcomes.count(NOT_ALIGNED) == 2061 - 762
    assert all(s.question and s.answer for c in kept for s in c.steps)
    cot = [human_chain(p, "cot") for p in strategyqa.load("train")]
    assert sum(isinstance(c, Chain) for c in cot) == 2061


def test_svamp_has_no_human_reasoning():
    with pytest.raises(SocraticError, match="svamp has no human reasoning"):
        human_chain(svamp.load("train")[0], "socratic")
