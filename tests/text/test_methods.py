"""The methods are defined once: their roles decide what is trained and how it is solved."""

import pytest

from socratic.core.errors import SocraticError
from socratic.text import formats, methods


def test_each_method_names_its_students():
    assert methods.get_method("iterative").roles == ("qg", "qa") and methods.get_method("iterative").iterative
    assert [m.roles for m in methods.METHODS.values() if not m.iterative] == [("answer",), ("cot",), ("unified",)]
    assert set(methods.ROLES) == {r for m in methods.METHODS.values() for r in m.roles} == set(formats.ROLES)


def test_training_takes_a_method_or_one_role():
    assert methods.roles_to_train("iterative") == ("qg", "qa")
    assert methods.roles_to_train("qa") == ("qa",)
    assert methods.role_folder("runs/it", "iterative", "qg").as_posix() == "runs/it/qg"
    assert methods.role_folder("runs/u", "unified", "unified").as_posix() == "runs/u"
    with pytest.raises(SocraticError, match=r"unknown method or role 'unifed' \(did you mean 'unified'\?\)"):
        methods.roles_to_train("unifed")
    with pytest.raises(SocraticError, match="unknown method 'qg'"):
        methods.get_method("qg")
