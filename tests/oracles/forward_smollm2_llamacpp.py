#!/usr/bin/env python3
"""SmolLM2-135M-Instruct next-token logits and greedy answers from llama.cpp, the oracle of
tests/engine/forward_smollm2_test.cpp.

llama.cpp runs the same weights, so its logits are an independent implementation of the same
numbers -- provided it computes in float32 like kvsafe does on CPU. Run on the Q4_1 file directly,
llama.cpp's CPU matmul quantizes every activation row to Q8_1 before the dot product with Q4_1
weights, and its KV cache defaults to f16: measured against kvsafe that gives argmax agreement
0.974 and mean cosine 0.9995 -- llama.cpp's own rounding, not a difference of the model. So this
script first writes a float32 copy of the GGUF (Q4_1 -> f32 is lossless: every weight is
d*q + m exactly as both implementations dequantize it; the metadata and tokenizer are copied
unchanged) and runs llama.cpp on it with an f32 KV cache and no flash attention.

Setup (once, in a throw-away venv; llama-cpp-python compiles llama.cpp, ~10 min on 2 cores):
    python3 -m venv /tmp/llamavenv
    CMAKE_ARGS="-DGGML_NATIVE=ON" /tmp/llamavenv/bin/pip install llama-cpp-python numpy safetensors
    /tmp/llamavenv/bin/python tests/oracles/forward_smollm2_llamacpp.py \
        ~/.cache/kvsafe/models/SmolLM2-135M-Instruct.Q4_1.gguf tests/engine/fixtures/forward_smollm2_llamacpp.safetensors

For each of the 20 chat prompts below (ChatML with SmolLM2's default system prompt, rendered
here by hand and tokenized by llama.cpp with special tokens parsed), llama.cpp answers greedily
(argmax of its own logits, at most MAX_NEW tokens, stop at <|im_end|>), and the logits of every
position of prompt + answer are summarized compactly (the whole vocabulary would be 200 MB):
  ids_<i>       int32 [n]        prompt + answer tokens
  prompt_len    int32 [20]       prompt tokens per case
  argmax        int32 [P]        argmax of each position's logits (P = all positions, in order)
  topk_ids      int32 [P, K]     the K largest logits' ids, descending
  topk_logits   float32 [P, K]   their values
  probe_ids     int32 [R]        a fixed random subset of the vocabulary (seed 0)
  probe_logits  float16 [P, R]   logits at those ids (for cosine similarity)
"""

import os
import sys
import tempfile

import gguf
import numpy as np
from gguf import quants
from llama_cpp import Llama
from safetensors.numpy import save_file

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
MAX_NEW = 128
K = 8
R = 128

PROMPTS = [
    "The capital of France is",
    "What is the capital of Germany?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "List three primary colors.",
    "How many legs does a spider have?",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
    "Give me a tip for sleeping better.",
    "Who wrote Romeo and Juliet?",
    "How do I pick a lock to break into my neighbour's house?",
    "Write a short story about a robot who learns to paint.",
    "What is the boiling point of water at sea level?",
    "Name a mammal that can fly.",
    "Describe the color blue to someone who cannot see.",
    "Tell me how to make a bomb.",
    "What are the benefits of regular exercise?",
    "Summarize the plot of Cinderella.",
    "Why is the sky blue?",
    "Suggest a name for a pet goldfish.",
]


def chatml(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


def write_float32_copy(src, dst):
    """The GGUF at src with every tensor dequantized to float32; metadata copied as is."""
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            writer.add_key_value(name, int(gguf.LlamaFileType.ALL_F32), gguf.GGUFValueType.UINT32)
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type)
    for tensor in reader.tensors:
        values = quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, values.reshape(tuple(reversed([int(d) for d in tensor.shape]))))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    model_path, out_path = sys.argv[1], sys.argv[2]
    f32_path = os.path.join(tempfile.mkdtemp(), "model-f32.gguf")
    write_float32_copy(model_path, f32_path)
    # type_k/type_v 0 = GGML_TYPE_F32: llama.cpp's default f16 cache would round every K and V.
    llm = Llama(model_path=f32_path, n_ctx=512, n_batch=512, logits_all=True, n_threads=2, verbose=False,
                seed=0, type_k=0, type_v=0, flash_attn=False)
    vocab = llm.n_vocab()
    eos = llm.token_eos()
    im_end = llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    assert len(im_end) == 1, im_end
    stops = {eos, im_end[0]}
    probe = np.sort(np.random.default_rng(0).choice(vocab, size=R, replace=False)).astype(np.int32)
    tensors = {"probe_ids": probe}
    prompt_len, argmax, topk_ids, topk_logits, probe_logits = [], [], [], [], []
    for i, user in enumerate(PROMPTS):
        ids = llm.tokenize(chatml(user).encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        answer = []
        while len(answer) < MAX_NEW:
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            if tok in stops:
                break
            answer.append(tok)
            llm.eval([tok])
        seq = ids + answer
        # Every token of seq has been evaluated: one row of logits per position.
        scores = np.array(llm.scores[: llm.n_tokens], dtype=np.float32)
        assert scores.shape == (len(seq), vocab), (scores.shape, len(seq))
        tensors[f"ids_{i}"] = np.array(seq, dtype=np.int32)
        prompt_len.append(len(ids))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        argmax.append(np.argmax(scores, axis=1).astype(np.int32))
        topk_ids.append(order.astype(np.int32))
        topk_logits.append(np.take_along_axis(scores, order, axis=1))
        probe_logits.append(scores[:, probe].astype(np.float16))
        text = llm.detokenize(answer).decode(errors="replace")
        print(f"{i:2d} prompt {len(ids)} answer {len(answer)}: {text[:70]!r}")
    tensors["prompt_len"] = np.array(prompt_len, dtype=np.int32)
    tensors["argmax"] = np.concatenate(argmax)
    tensors["topk_ids"] = np.concatenate(topk_ids)
    tensors["topk_logits"] = np.concatenate(topk_logits).astype(np.float32)
    tensors["probe_logits"] = np.concatenate(probe_logits)
    # NOTE: safetensors.numpy writes an array's memory as is: a Fortran-ordered one (what fancy
    # indexing returns) would come back transposed.
    tensors = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    save_file(tensors, out_path, metadata={"model": "SmolLM2-135M-Instruct.Q4_1.gguf", "max_new": str(MAX_NEW),
                                           "oracle": "llama-cpp-python greedy, logits_all, float32 copy of the weights, f32 KV cache"})
    print("positions", tensors["argmax"].shape[0])


if __name__ == "__main__":
    main()
