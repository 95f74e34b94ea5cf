"""Builder details that checks and messages rely on: reserved words and target positions."""

from dsl.loader import load_text, parse_journey


def test_a_stage_named_exit_is_refused():
    loaded = load_text('journey "x"\nstage a\n  initial\n  on go -> exit\nstage exit "Exit"\n  final\n', "t.journey")
    assert not loaded.ok
    (d,) = [d for d in loaded.diagnostics if d.code == "C024"]
    assert (d.span.line, d.span.column) == (5, 7)
    assert "reserved" in d.message


def test_exit_targets_point_at_the_word_exit():
    text = (
        'journey "x"\nstage a\n  initial\n  on go -> exit  # bye, exit\n'
        '  hold after 1 day idle: every 1 day send email "exit", 2 times, then exit\n'
    )
    journey, diagnostics = parse_journey(text, "t.journey")
    assert diagnostics == []
    trigger_span = journey.stages[0].triggers[0].target_span
    hold_span = journey.stages[0].hold.target_span
    assert (trigger_span.line, trigger_span.column, trigger_span.end_column) == (4, 12, 16)
    assert (hold_span.line, hold_span.column) == (5, text.splitlines()[4].rfind("exit") + 1)


def test_loading_pauses_the_garbage_collector_and_restores_it(monkeypatch):
    """docs/decisions.md, "The garbage collector is off while a journey loads": off inside, as it was after."""
    import gc

    import dsl.loader

    seen = []
    real = dsl.loader.parse_journey

    def spy(text, path="<string>"):
        seen.append(gc.isenabled())
        return real(text, path)

    monkeypatch.setattr(dsl.loader, "parse_journey", spy)
    text = 'journey "x"\nstage a\n  initial\n  on go -> b\nstage b\n  final\n'
    was = gc.isenabled()
    try:
        gc.enable()
        assert load_text(text, "t.journey").ok
        assert gc.isenabled()
        gc.disable()
        assert load_text(text, "t.journey").ok
        assert not gc.isenabled()  # a caller that paused it keeps it paused
        gc.enable()

        def broken(text, path="<string>"):
            raise RuntimeError("boom")

        monkeypatch.setattr(dsl.loader, "parse_journey", broken)
        try:
            load_text(text, "t.journey")
        except RuntimeError:
            pass
        assert gc.isenabled()  # restored even when loading fails
    finally:
        gc.enable() if was else gc.disable()
    assert seen == [False, False]


def test_compiling_pauses_the_garbage_collector_and_restores_it(monkeypatch):
    """compile_journey runs with the collector off, as loading does, and leaves it as it was, even on an error."""
    import gc

    import engine.compiler
    from engine.compiler import compile_journey

    loaded = load_text('journey "x"\nstage a\n  initial\n  on go -> b\nstage b\n  final\n', "t.journey")
    seen = []
    real = engine.compiler._transition_table

    def spy(journey):
        seen.append(gc.isenabled())
        return real(journey)

    monkeypatch.setattr(engine.compiler, "_transition_table", spy)
    was = gc.isenabled()
    try:
        gc.enable()
        compile_journey(loaded.journey, loaded.diagnostics)
        assert gc.isenabled()
        gc.disable()
        compile_journey(loaded.journey, loaded.diagnostics)
        assert not gc.isenabled()  # a caller that paused it keeps it paused
        gc.enable()

        def broken(journey):
            raise RuntimeError("boom")

        monkeypatch.setattr(engine.compiler, "_transition_table", broken)
        try:
            compile_journey(loaded.journey, loaded.diagnostics)
        except RuntimeError:
            pass
        assert gc.isenabled()  # restored when compiling fails
    finally:
        gc.enable() if was else gc.disable()
    assert seen == [False, False]
