"""The floor for `phi3-harness generate "Hello" --max-new-tokens 32`: the same engine work, nothing else.

Opens the cached tiny model, streams a greedy reply to one chat message and prints it. Used by
benchmarks/startup.py as the baseline the CLI's start-up is compared with.

    python benchmarks/engine_only.py "Hello" 32
"""

import sys

from harness.model.default_model import default_model_dir
from harness.targets.base import Request
from harness.targets.engine import Engine

engine = Engine.load(default_model_dir())
request = Request(messages=(("user", sys.argv[1]),), max_new_tokens=int(sys.argv[2]))
for item in engine.stream(request):
    print(getattr(item, "text", ""), end="", flush=True)
print()
