"""llama.cpp loads quantised weights without AMX repacking on AMX CPUs (a segfault otherwise), and
nothing changes elsewhere or outside the block. The end-to-end check is tests/test_models.py, which
runs SmolLM2's Q4_1 file through llama.cpp."""

from llama_cpp import llama_cpp as low

from socratic.llamacpp.buffers import cpu_has_amx, model_params, without_repacking


def test_repacking_is_off_exactly_where_the_cpu_has_amx():
    assert model_params().use_extra_bufts is not cpu_has_amx()
    with without_repacking():
        assert low.llama_model_default_params().use_extra_bufts is not cpu_has_amx()
    assert low.llama_model_default_params().use_extra_bufts is True


def test_the_block_restores_llama_cpp_after_an_error():
    original = low.llama_model_default_params
    try:
        with without_repacking():
            raise KeyError("boom")
    except KeyError:
        pass
    assert low.llama_model_default_params is original
