"""The official `openai` package against `deepseek-wgpu serve` (run by tests/server.rs).

usage: openai_client.py PLAIN_URL TOOLS_URL
PLAIN_URL serves the embedded tiny-r1 with its own template; TOOLS_URL the same model with
DeepSeek-R1-0528's chat template (tool sections). Exits non-zero on the first failed check.
"""

import json
import sys
import urllib.request

import jsonschema
import openai

plain_url, tools_url = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=plain_url, api_key="unused")
tools_client = openai.OpenAI(base_url=tools_url, api_key="unused")
Q = [{"role": "user", "content": "What is 4821 + 379?"}]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what.splitlines()[0][:100]}")


# models
ids = [m.id for m in client.models.list()]
check(ids == ["tiny-r1"], f"models.list() = {ids}")

# non-streaming chat: the answer, the reasoning apart, usage with reasoning tokens
r = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=0, max_tokens=256)
msg = r.choices[0].message
reasoning = getattr(msg, "reasoning_content", None) or (msg.model_extra or {}).get("reasoning_content")
check("5200" in msg.content, f"answer {msg.content!r} contains 5200")
check(bool(reasoning) and "</think>" not in msg.content and "<think>" not in reasoning, f"reasoning_content apart: {reasoning!r}")
check(r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason}")
u = r.usage
check(0 < u.completion_tokens_details.reasoning_tokens < u.completion_tokens, f"usage {u}")
check(u.total_tokens == u.prompt_tokens + u.completion_tokens, "total_tokens")

# streaming: the same text, in reasoning_content and content deltas, then usage, then [DONE]
stream = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=0, max_tokens=256, stream=True, stream_options={"include_usage": True})
s_reason, s_content, finish, usage = "", "", None, None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        d = c.delta
        s_reason += (d.model_extra or {}).get("reasoning_content") or getattr(d, "reasoning_content", None) or ""
        s_content += d.content or ""
        finish = c.finish_reason or finish
check(s_content == msg.content and s_reason == reasoning, f"streamed text equals the non-streamed one: {s_content!r}")
check(finish == "stop" and usage is not None and usage.completion_tokens == u.completion_tokens, f"stream finish {finish}, usage {usage}")

# max_tokens: finish_reason length
r = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=0, max_completion_tokens=5)
check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5, f"max_completion_tokens 5: {r.choices[0].finish_reason} {r.usage}")

# stop strings
r = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=0, stop=["5200"])
check("5200" not in (r.choices[0].message.content or "") and r.choices[0].finish_reason == "stop", f"stop: {r.choices[0].message.content!r}")

# seeded sampling: same seed, same text
a = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=1.0, top_p=0.9, seed=7, max_tokens=60)
b = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=1.0, top_p=0.9, seed=7, max_tokens=60)
check(a.choices[0].message.content == b.choices[0].message.content and a.usage == b.usage, "same seed, same reply")

# logprobs: one entry per generated token; greedy picks the likeliest
r = client.chat.completions.create(model="tiny-r1", messages=Q, temperature=0, max_tokens=40, logprobs=True, top_logprobs=3)
lp = r.choices[0].logprobs.content
check(len(lp) == r.usage.completion_tokens, f"{len(lp)} logprob entries for {r.usage.completion_tokens} tokens")
check(all(len(t.top_logprobs) == 3 and t.logprob <= 0 for t in lp), "top_logprobs of 3, logprobs ≤ 0")
check(all(abs(t.logprob - t.top_logprobs[0].logprob) < 1e-4 and t.token == t.top_logprobs[0].token for t in lp), "greedy tokens are the top-1")

# a follow-up turn: the earlier reasoning is dropped, the cached prefix reused
follow = Q + [{"role": "assistant", "content": msg.content, "reasoning_content": reasoning}, {"role": "user", "content": "What is 17 + 25?"}]
r = client.chat.completions.create(model="tiny-r1", messages=follow, temperature=0)
# (tiny-r1 was trained on single questions, so the second answer itself is not checked)
check(isinstance(r.choices[0].message.content, str) and r.usage.prompt_tokens > u.prompt_tokens, f"second turn answered over the longer prompt ({r.usage.prompt_tokens} tokens)")
check(r.usage.prompt_tokens_details.cached_tokens > 0, f"cached_tokens {r.usage.prompt_tokens_details}")

# legacy completions: a raw prompt, no template
c = client.completions.create(model="tiny-r1", prompt="<｜User｜>What is 2 + 3?<｜Assistant｜><think>\n", temperature=0, max_tokens=64)
check("</think>" in c.choices[0].text and "5" in c.choices[0].text.split("</think>")[-1], f"completion {c.choices[0].text!r}")
text = "".join(ch.choices[0].text for ch in client.completions.create(model="tiny-r1", prompt="<｜User｜>What is 2 + 3?<｜Assistant｜><think>\n", temperature=0, max_tokens=64, stream=True) if ch.choices)
check(text == c.choices[0].text, "streamed completion equals the whole one")

# errors arrive as the SDK's exceptions with OpenAI's error object
for kwargs, exc, param in [
    (dict(model="tiny-r1", temperature=5), openai.BadRequestError, "temperature"),
    (dict(model="gpt-4o"), openai.NotFoundError, "model"),
    (dict(model="tiny-r1", response_format={"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": "nonsense"}}}), openai.BadRequestError, "response_format"),
]:
    try:
        client.chat.completions.create(messages=Q, **kwargs)
        check(False, f"{kwargs} was accepted")
    except exc as e:
        check(e.body["param"] == param and e.body["message"], f"{exc.__name__} for {kwargs}: {e.body['message']}")

# constrained decoding: a json_schema reply validates for every seed (the grammar bounds the
# lengths so tiny-r1, which would rather write digits forever, closes the object in time)
schema = {
    "type": "object",
    "properties": {"answer": {"type": "integer", "minimum": -9999, "maximum": 9999}, "sure": {"type": "boolean"}, "unit": {"enum": ["none", "cm"]}},
    "required": ["answer", "sure", "unit"],
    "additionalProperties": False,
}
rf = {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema, "strict": True}}
short = [{"role": "user", "content": "What is 2 + 3?"}]  # a short reasoning keeps this quick
for seed in [1, 2, 3]:
    r = client.chat.completions.create(model="tiny-r1", messages=short, seed=seed, max_tokens=150, response_format=rf)
    m = r.choices[0].message
    jsonschema.validate(json.loads(m.content), schema)
    check(r.choices[0].finish_reason == "stop" and (m.model_extra or {}).get("reasoning_content"), f"seed {seed}: {m.content!r} validates, after the reasoning")
r = client.chat.completions.create(model="tiny-r1", messages=short, temperature=0, max_tokens=150, response_format={"type": "json_object"})
check(isinstance(json.loads(r.choices[0].message.content), dict), f"json_object: {r.choices[0].message.content!r}")

# a forced tool call (named, or "required"; with the embedded template and R1-0528's, whose
# markers tiny-r1's characters cannot write, so Qwen3's plain-text form): tool_calls whose
# arguments parse and validate against the function's parameters
weather = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"], "additionalProperties": False}}}]
for cl, seed, choice in [(client, 5, {"type": "function", "function": {"name": "get_weather"}}), (tools_client, 7, "required")]:
    r = cl.chat.completions.create(model="tiny-r1", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=weather, tool_choice=choice, seed=seed, max_tokens=150)
    calls = r.choices[0].message.tool_calls or []
    check(r.choices[0].finish_reason == "tool_calls" and len(calls) >= 1 and calls[0].function.name == "get_weather", f"tool_choice {choice}: {calls}")
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), weather[0]["function"]["parameters"])

# tools with DeepSeek-R1-0528's template: the definitions, the call and its result reach the prompt
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
turns = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": None, "reasoning_content": "the user wants weather", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
]
req = urllib.request.Request(tools_url.removesuffix("/v1") + "/apply-template", data=json.dumps({"messages": turns, "tools": tools}).encode(), headers={"Content-Type": "application/json"})
prompt = json.load(urllib.request.urlopen(req))["prompt"]
check('"name":"get_weather"' in prompt and "<｜tool▁calls▁begin｜>" in prompt.split("<｜User｜>")[0], "tool definitions in the system prompt")
check('<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>' in prompt, "the assistant's tool call rendered")
check("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny, 21 C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>" in prompt, "the tool result rendered")
check("the user wants weather" not in prompt, "earlier reasoning not in the prompt")
r = tools_client.chat.completions.create(model="tiny-r1", messages=turns, tools=tools, temperature=0, max_tokens=32)
without = tools_client.chat.completions.create(model="tiny-r1", messages=turns[:1], temperature=0, max_tokens=1)
check(r.usage.prompt_tokens > without.usage.prompt_tokens + 100, f"the round trip's prompt carries the tools and results ({r.usage.prompt_tokens} vs {without.usage.prompt_tokens} tokens)")
check(r.choices[0].finish_reason in ("stop", "length", "tool_calls"), f"round trip finish {r.choices[0].finish_reason}")
try:
    client.chat.completions.create(model="tiny-r1", messages=turns, tools=tools)
    check(False, "tool results accepted by a template that would drop them")
except openai.BadRequestError as e:
    check("chat template" in e.body["message"], "the embedded template refuses tool results it cannot render")

print("all openai client checks passed")
