"""The demo: a generator of realistic multilingual feedback with known injected effects
(``generator``, ``phrases``) and the runner behind ``radar demo`` (``run``).

Above the runtime, which the runner uses like the CLI does; nothing below imports the demo (the
model build's parity sample is frozen in ``service/nlp/build/parity_inputs.json``).
"""
