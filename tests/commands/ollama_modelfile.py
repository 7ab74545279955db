"""Ollama's Modelfile parser, ported line for line to Python from ollama/ollama parser/parser.go
(`ParseFile`, `parseRuneForState`, `unquote`; commit fb30760996871fa9460115c753afd2c60d4ab0f7), so the
export tests read a Modelfile as `ollama create` does: one pair of quotes (or triple quotes) stripped,
no escapes read, a newline kept only inside quotes."""

NIL, NAME, VALUE, PARAMETER, MESSAGE, COMMENT = range(6)
COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message"}
COMMANDS |= {"requires"}


def is_space(r: str) -> bool:
    return r in " \t"


def is_newline(r: str) -> bool:
    return r in "\r\n"


def is_alpha(r: str) -> bool:
    return "a" <= r <= "z" or "A" <= r <= "Z"


def is_print(r: str) -> bool:  # Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and ' '
    return r == " " or (r.isprintable() and not r.isspace())


def unquote(s: str) -> tuple[str, bool]:
    if len(s) >= 3 and s[:3] == '"""':
        if len(s) >= 6 and s[-3:] == '"""':
            return s[3:-3], True
        return "", False
    if len(s) >= 1 and s[0] == '"':
        if len(s) >= 2 and s[-1] == '"':
            return s[1:-1], True
        return "", False
    return s, True


def next_state(r: str, current: int) -> tuple[int, str]:
    if current == NIL:
        if r == "#":
            return COMMENT, ""
        return (NIL, "") if is_space(r) or is_newline(r) else (NAME, r)
    if current == NAME:
        if is_alpha(r):
            return NAME, r
        if is_space(r):
            return VALUE, ""
        raise ValueError("invalid command")
    if current == VALUE:
        return (NIL, r) if is_newline(r) or is_space(r) else (VALUE, r)
    if current in (PARAMETER, MESSAGE):
        if is_alpha(r) or (current == PARAMETER and (r.isdigit() or r == "_")):
            return current, r
        if is_space(r):
            return VALUE, ""
        raise ValueError("unexpected end")
    assert current == COMMENT
    return (NIL, "") if is_newline(r) else (COMMENT, "")


def parse(text: str) -> list[tuple[str, str]]:
    """The Modelfile's commands as (name, argument): ("model", path), ("template", ...), ("stop", ...)."""
    commands: list[tuple[str, str]] = []
    current, buffer, name, role = NIL, "", "", ""
    for r in text:
        following, r = next_state(r, current)
        if following != current:
            if current == NAME:
                assert buffer.lower() in COMMANDS, f"invalid command {buffer!r}"
                lowered = buffer.lower()
                if lowered == "from":
                    name = "model"
                elif lowered == "parameter":
                    following = PARAMETER
                else:
                    if lowered == "message":
                        following = MESSAGE
                    name = lowered
            elif current == PARAMETER:
                name = buffer
            elif current == MESSAGE:
                role = buffer
            elif current == VALUE:
                value, ok = unquote(buffer.strip())
                if not ok or is_space(r):
                    buffer += r
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                commands.append((name, value))
            buffer, current = "", following
        if r and is_print(r):
            buffer += r
    if current == VALUE:
        value, ok = unquote(buffer.strip())
        assert ok, "unexpected end of file"
        commands.append((name, f"{role}: {value}" if role else value))
    else:
        assert current in (NIL, COMMENT), "unexpected end of file"
    return commands
