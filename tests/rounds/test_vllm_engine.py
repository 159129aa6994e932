"""The vLLM backend up to the engine boundary: engine and sampling arguments, the weights pushed each round and
their names, tensor-parallel slices, the import guard. No engine runs here (vLLM needs a GPU); none is faked."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from peft import LoraConfig, get_peft_model

from prefopt.rounds.vllm_engine import (
    ENGINE_DEFAULTS,
    engine_kwargs,
    group_slice,
    policy_weights,
    sampling_kwargs,
    vllm_sample,
)
from tests.conftest import make_model, make_tokenizer


def test_engine_kwargs_defaults_overrides_and_tensor_parallel_groups():
    kw = engine_kwargs("my/model", {"gpu_memory_utilization": 0.5}, process_index=3, num_processes=4)
    assert kw["model"] == "my/model" and kw["gpu_memory_utilization"] == 0.5 and kw["seed"] == 3
    assert kw["distributed_executor_backend"] == "external_launcher"  # in-process engine, weights reachable
    assert "max_model_len" not in kw  # None: vLLM reads it from the model config
    tp = engine_kwargs("m", {"tensor_parallel_size": 2}, process_index=3, num_processes=4)
    assert tp["seed"] == 1 and tp["tensor_parallel_size"] == 2  # ranks 2 and 3 share one engine and its seed
    with pytest.raises(ValueError, match="must divide the number of processes"):
        engine_kwargs("m", {"tensor_parallel_size": 3}, process_index=0, num_processes=4)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['gpu_mem'\]"):
        engine_kwargs("m", {"gpu_mem": 0.5}, process_index=0, num_processes=1)
    assert set(ENGINE_DEFAULTS) >= {"gpu_memory_utilization", "tensor_parallel_size"}


def test_sampling_kwargs_carry_each_prompts_seed():
    kw = sampling_kwargs([7, 8], k=4, max_new_tokens=12, temperature=0.7, top_p=0.9)
    assert [k["seed"] for k in kw] == [7, 8]
    assert kw[0] == {"n": 4, "temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_tokens": 12, "seed": 7,
                     "skip_special_tokens": True}
    assert sampling_kwargs([7], k=1, max_new_tokens=1, temperature=1.0, top_p=1.0, top_k=40)[0]["top_k"] == 40


def test_group_slice_hands_each_rank_its_own_prompts_back():
    sizes = [3, 2, 3]  # uneven shares
    joined = [f"r{r}p{i}" for r, n in enumerate(sizes) for i in range(n)]
    assert [joined[group_slice(sizes, r)] for r in range(3)] == [["r0p0", "r0p1", "r0p2"], ["r1p0", "r1p1"],
                                                                  ["r2p0", "r2p1", "r2p2"]]


def test_policy_weights_of_a_plain_model_are_its_parameters():
    model = make_model()
    pushed = dict(policy_weights(model))
    assert pushed.keys() == dict(model.named_parameters()).keys()
    assert all(torch.equal(pushed[n], p) for n, p in model.named_parameters())


def test_policy_weights_of_a_lora_policy_are_the_merged_checkpoint():
    """Names as in the base checkpoint, values base + adapter delta, the live model left unmerged."""
    base = make_model()
    lora = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                          init_lora_weights=False))  # B ≠ 0: a real delta
    before = {n: p.clone() for n, p in lora.named_parameters()}
    pushed = dict(policy_weights(lora))
    merged = dict(copy.deepcopy(lora).merge_and_unload().named_parameters())
    assert pushed.keys() == merged.keys() == dict(base.named_parameters()).keys()
    for name, value in merged.items():
        torch.testing.assert_close(pushed[name], value, rtol=0, atol=1e-6)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(pushed[q], dict(base.named_parameters())[q])  # the adapter's delta is in
    assert all(torch.equal(p, before[n]) for n, p in lora.named_parameters())  # live model untouched


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_without_vllm_the_backend_says_how_to_install_it():
    with pytest.raises(ImportError, match=r"pip install prefopt\[vllm\]"):
        vllm_sample(make_model(), make_tokenizer(), [[1, 5]], seeds=[0], k=2, max_new_tokens=4, temperature=1.0,
                    top_p=1.0)
