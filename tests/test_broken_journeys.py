"""Broken journeys, each with the diagnostic a marketer must get: code, line, column, message.

Every code the language has is produced here by at least one small journey; the
CLI contract of `coltiva check` (exit codes, JSON, plain text when piped) is
tested at the end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsl import load_text, render_plain
from dsl.mistakes import MISTAKES
from dsl.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent


def load(text: str, directory: Path | None = None):
    return load_text(textwrap.dedent(text).lstrip("\n"), "t.journey", directory)


# id, journey text, code, line, column, message fragment, hint fragment (or None)
CASES = [
    # ---- syntax: a corpus of typical mistakes ------------------------------
    ("missing arrow", """
        journey "t"
        stage a
          initial
          on form.submitted shown_interest
        """, "C002", 4, 21, "needs `->`", "on form.submitted -> shown_interest"),
    ("missing arrow after threshold", """
        journey "t"
        stage a
          initial
          when score >= 20 b
        """, "C002", 4, 20, "needs `->`", None),
    ("unquoted content id", """
        journey "t"
        stage a
          initial
          send ebook hidden-cost on entry
        """, "C003", 4, 14, "must be in double quotes", 'send ebook "hidden-cost-of-x"'),
    ("duration without unit", """
        journey "t"
        stage a
          initial
          send ebook "x" after 7
        """, "C004", 4, 25, "needs a unit", "after 7 days"),
    ("duration in months", """
        journey "t"
        stage a
          initial
          send ebook "x" after 2 months
        """, "C081", 4, 24, "not a fixed length: a month is 28 to 31 days", "9 weeks"),
    ("send without when", """
        journey "t"
        stage a
          initial
          send ebook "x"
        """, "C005", 4, 17, "say when to send", "on entry"),
    ("scoring rule without points", """
        journey "t"
        scoring
          email.clicked
        stage a
          initial
        """, "C006", 3, 16, "needs points", "email.clicked +3"),
    ("hold without colon", """
        journey "t"
        stage a
          initial
          hold after 14 days idle every 14 days send newsletter "d", 6 times, then -> b
        """, "C007", 4, 27, "holding loop reads", "`:` after `idle`"),
    ("unterminated string", """
        journey "t"
        stage a
          initial
          send email "welcome on entry
        """, "C008", 4, 14, "no closing quote", "double quote on the same line"),
    ("dedent to no block", """
        journey "t"
        stage a
          initial
          on x -> b
         on y -> b
        """, "C009", 5, 2, "matches no enclosing block: line 4 is indented by 2", "same amount"),
    ("arrow glued to the event", """
        journey "t"
        stage a
          initial
          on go->b
        stage b
          final
        """, "C002", 4, 8, "put a space before `->`", "on go -> b"),
    ("arrow glued to a dashed event", """
        journey "t"
        stage a
          initial
          on form-submitted-> b
        stage b
          final
        """, "C002", 4, 20, "a `-` right after an event type is read as part of its name",
     "on form-submitted -> b"),
    ("accented stage id", """
        journey "t"
        stage début
          initial
        """, "C014", 2, 7, "a stage id is written with ASCII letters, digits and `_` only, not `début`",
     '`stage debut "début"`: the label in quotes can be in any language'),
    ("accented target", """
        journey "t"
        stage a
          initial
          on x -> réussi
        """, "C014", 4, 11, "ASCII letters, digits and `_` only, not `réussi`", "-> reussi"),
    ("accented event type", """
        journey "t"
        stage a
          initial
          on clic.é -> b
        stage b
          final
        """, "C001", 4, 6, "ASCII letters, digits, `_` and `.` only, not `clic.é`", "in quotes"),
    ("threshold in scientific notation", """
        journey "t"
        stage a
          initial
          when score >= 1e400 -> b
        stage b
          final
        """, "C017", 4, 17, "a threshold is a plain number like 20 or 12.5, not `1e400`", "when score >= 20"),
    ("threshold with a comma", """
        journey "t"
        stage a
          initial
          when score >= 12,5 -> b
        stage b
          final
        """, "C017", 4, 17, "plain number like 20 or 12.5, not `12,5`", None),
    ("condition number in scientific notation", """
        journey "t"
        stage a
          initial
          on x where amount >= 1e3 -> b
        stage b
          final
        """, "C016", 4, 24, "a number is written plainly, like 20 or 12.5, not `1e3`", "amount >= 100"),
    ("threshold with ==", """
        journey "t"
        stage a
          initial
          when score == 20 -> b
        """, "C010", 4, 3, "not ==", "when score >= 20"),
    ("two holding loops", """
        journey "t"
        stage a
          initial
          hold after 1 day idle: every 1 day send email "a", 2 times, then -> b
          hold after 2 days idle: every 1 day send email "b", 2 times, then -> b
        """, "C011", 5, 3, "more than one holding loop", "one `hold` line"),
    ("named twice", """
        journey "t"
        journey "u"
        """, "C012", 2, 1, "named twice", None),
    ("decay twice", """
        journey "t"
        scoring
          decay half-life 3 days
          decay half-life 4 days
        """, "C013", 4, 3, "decay is declared twice", "first at line 3"),
    ("stage without id", """
        journey "t"
        stage "Unaware"
          initial
        """, "C014", 2, 7, "needs an id", 'stage shown_interest "Shown interest"'),
    ("unquoted journey name", """
        journey Webinar
        """, "C015", 1, 9, "must be in double quotes", 'journey "Webinar follow-up"'),
    ("two-word stage id", """
        journey "t"
        stage shown interest
          initial
        """, "C015", 2, 13, "double quotes", "join words with `_`"),
    ("unquoted condition value", """
        journey "t"
        stage a
          initial
          on page.visited where path == /pricing -> b
        """, "C016", 4, 33, "compares a field with a value", 'path starts with "/pricing"'),
    ("threshold with is", """
        journey "t"
        stage a
          initial
          when score is 20 -> b
        """, "C017", 4, 14, "when score >= 20", ">=, >, <=, <"),
    ("unindented stage line", """
        journey "t"
        stage a
        initial
        """, "C018", 3, 1, "must be indented", "two spaces"),
    ("over-indented line", """
        journey "t"
        stage a
          initial
          on x -> b
            on y -> b
        """, "C018", 5, 5, "indented more than the line above", "same column"),
    ("misspelled keyword", """
        journey "t"
        stage a
          initial
          sned email "x" on entry
        """, "C019", 4, 3, "unknown word `sned`", "did you mean `send`?"),
    ("misspelled initial", """
        journey "t"
        stage a
          intial
        """, "C019", 3, 3, "unknown word `intial`", "did you mean `initial`?"),
    ("not a statement", """
        journey "t"
        hello world
        """, "C019", 2, 1, "`hello` does not start a statement", "`stage`"),
    ("extra words", """
        journey "t"
        stage a
          initial
          on x -> b c
        """, "C001", 4, 13, "should end before `c`", "remove the extra words"),
    ("unclosed parenthesis", """
        journey "t"
        stage a
          initial
          on page.visited where (path == "/a" or path == "/b" -> b
        """, "C001", 4, 55, "unexpected `->`", "`)`"),
    ("single quotes", """
        journey "t"
        stage a
          initial
          send email 'welcome' on entry
        """, "C057", 4, 14, "double quotes", 'send email "welcome" on entry'),
    # ---- loader --------------------------------------------------------------
    ("no name", """
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C023", 1, 1, "has no name", 'journey "Webinar follow-up"'),
    ("stage named exit", """
        journey "t"
        stage a
          initial
          on x -> exit
        stage exit
          final
        """, "C024", 5, 7, "`exit` is a reserved word", "name the stage differently"),
    # ---- names ---------------------------------------------------------------
    ("unknown stage", """
        journey "t"
        stage unaware
          initial
          on form.submitted -> shown_intrest
        stage shown_interest
          final
        """, "C030", 4, 24, "unknown stage `shown_intrest`", "did you mean `shown_interest`?"),
    ("unknown stage, no guess", """
        journey "t"
        stage a
          initial
          on x -> nowhere
        stage b
          final
        """, "C030", 4, 11, "unknown stage `nowhere`", "stage nowhere"),
    ("duplicate stage", """
        journey "t"
        stage a
          initial
          on x -> b
        stage b
          final
        stage a
          final
        """, "C031", 7, 7, "declared twice", "t.journey:2:7"),
    ("no initial stage", """
        journey "t"
        stage a
          on x -> b
        stage b
          final
        """, "C032", 2, 7, "no stage is marked `initial`", "e.g. `a`"),
    ("two initial stages", """
        journey "t"
        stage a
          initial
          on x -> b
        stage b
          initial
          on y -> c
        stage c
          final
        """, "C033", 5, 7, "second initial stage", "leads start in `a`"),
    ("unknown content with did you mean", """
        journey "t"
        content
          email "welcome"
          ebook "guide"
        stage a
          initial
          send email "welcom" on entry
          on x -> b
        stage b
          final
        """, "C034", 7, 3, "unknown content `welcom`", "did you mean `welcome`?"),
    ("content declared twice", """
        journey "t"
        content
          email "w"
          email "w"
        stage a
          initial
          send email "w" on entry
          on x -> b
        stage b
          final
        """, "C035", 4, 3, "declared twice", "t.journey:3:3"),
    ("wrong content kind", """
        journey "t"
        content
          ebook "guide"
        stage a
          initial
          send email "guide" on entry
          on x -> b
        stage b
          final
        """, "C036", 6, 3, "`guide` is an ebook, not an email", 'send ebook "guide"'),
    ("event type typo", """
        journey "t"
        scoring
          email.opened +1
          email.opened +1 at most 3 per 1 day
        stage a
          initial
          on email.opend -> b
        stage b
          final
        """, "C037", 7, 3, "`email.opend` looks like a typo", "did you mean `email.opened`?"),
    ("bad regex", """
        journey "t"
        fit
          job.title matches "(director" +10
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C038", 3, 3, "not a valid pattern", "regular expressions"),
    ("self target", """
        journey "t"
        stage a
          initial
          on x -> a
          on y -> b
        stage b
          final
        """, "C039", 4, 3, "leads back to `a` itself", "another stage"),
    ("hold ends in its own stage", """
        journey "t"
        stage a
          initial
          on y -> b
          hold after 1 day idle: every 1 day send email "n", 2 times, then -> a
        stage b
          final
        """, "C039", 5, 3, "holding loop of `a` ends in `a`", "then exit"),
    # ---- graph -----------------------------------------------------------------
    ("unreachable stage", """
        journey "t"
        stage a
          initial
          on x -> b
        stage b
          final
        stage c
          on y -> b
        """, "C040", 7, 7, "no lead can ever reach stage `c`", "add a trigger"),
    ("reached only through a trigger that never fires", """
        journey "t"
        stage a
          initial
          on x -> b
          on x -> c
        stage b
          final
        stage c
          final
        """, "C040", 8, 7, "reach stage `c`", None),
    ("dead end", """
        journey "t"
        stage a
          initial
          on x -> b
        stage b
        """, "C041", 5, 7, "stage `b` has no way out", "mark it `final`"),
    ("trap cycle", """
        journey "t"
        stage a
          initial
          on x -> b
          on done -> won
        stage b
          on y -> c
        stage c
          on z -> b
        stage won
          final
        """, "C042", 6, 7, "a lead in `b`, `c` can never reach a final stage", "`-> exit`"),
    ("final with a way out", """
        journey "t"
        stage a
          initial
          on x -> b
        stage b
          final
          on y -> a
        """, "C043", 7, 3, "final stage `b` has a way out", "remove `final`"),
    ("shadowed trigger, other target: error", """
        journey "t"
        stage a
          initial
          on x -> b
          on x -> c
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "never fires: line 4 already takes every `x`", "more specific with `where`"),
    ("shadowed threshold", """
        journey "t"
        scoring
          x +1
        stage a
          initial
          when score >= 40 -> b
          when score >= 80 -> c
        stage b
          final
        stage c
          final
        """, "C044", 7, 3, "threshold never fires: line 6", "`>= 80` before `>= 40`"),
    ("timer always beaten", """
        journey "t"
        stage a
          initial
          after 3 days in stage -> c
          after 5 days idle -> b
          on x -> b
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "timer never fires: line 4", "shorter"),
    ("exit rule takes the event first", """
        journey "t"
        exit on email.unsubscribed
        stage a
          initial
          on email.unsubscribed -> b
          on x -> b
        stage b
          final
        """, "C044", 5, 3, "`exit on email.unsubscribed` (line 2) removes the lead first", "narrow the exit rule"),
    ("shadowed by a broader condition", """
        journey "t"
        stage a
          initial
          on form.submitted where plan == "pro" -> b
          on form.submitted where plan == "pro" and seats > 5 -> c
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "never fires: every `form.submitted` it matches also matches line 4",
     "put the more specific trigger first"),
    ("shadowed by a lower bound", """
        journey "t"
        stage a
          initial
          on deal.updated where amount > 5 -> b
          on deal.updated where amount > 10 -> c
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "also matches line 4, which comes first", "more specific trigger first"),
    ("shadowed by a shorter prefix", """
        journey "t"
        stage a
          initial
          on page.visited where path starts with "/p" -> b
          on page.visited where path starts with "/pricing" -> c
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "every `page.visited` it matches also matches line 4", None),
    ("shadowed by a larger list", """
        journey "t"
        stage a
          initial
          on form.submitted where plan in ["a", "b"] -> b
          on form.submitted where plan == "a" -> c
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "also matches line 4", None),
    ("shadowed by a conditional exit rule", """
        journey "t"
        exit on email.bounced where kind == "hard"
        stage a
          initial
          on email.bounced where kind == "hard" and count > 2 -> b
          on x -> b
        stage b
          final
        """, "C044", 5, 3, "`exit on email.bounced` (line 2) removes the lead first", "narrow the exit rule"),
    ("narrower condition first only overlaps", """
        journey "t"
        stage a
          initial
          on deal.updated where amount > 10 -> b
          on deal.updated where amount > 5 -> c
        stage b
          final
        stage c
          final
        """, "C045", 5, 3, "can match both this trigger and line 4", "exclude each other"),
    ("overlapping conditions", """
        journey "t"
        stage a
          initial
          on page.visited where path starts with "/p" -> b
          on page.visited where path contains "pricing" -> c
        stage b
          final
        stage c
          final
        """, "C045", 5, 3, "can match both this trigger and line 4", "exclude each other"),
    ("unreachable threshold up", """
        journey "t"
        scoring
          email.opened +1 at most 2 per 30 days
          decay half-life 30 days
        stage a
          initial
          when score >= 100 -> b
          on x -> b
        stage b
          final
        """, "C046", 7, 3, "no lead can reach `score >= 100`", "highest score"),
    ("unreachable threshold down", """
        journey "t"
        scoring
          email.opened +1
        stage a
          initial
          when score < 0 -> b
          on x -> b
        stage b
          final
        """, "C046", 6, 3, "no lead can go down to `score < 0`", "negative points"),
    ("cascade loop", """
        journey "t"
        scoring
          a +1
          b -1
        stage a
          initial
          when score >= 10 -> b
        stage b
          when score < 20 -> a
          on y -> c
        stage c
          final
        """, "C047", 7, 3, "round in circles: a -> b -> a", "[10, 20)"),
    ("content sent twice on a path", """
        journey "t"
        stage a
          initial
          send email "welcome" on entry
          on x -> b
        stage b
          send email "welcome" on entry
          final
        """, "C048", 7, 3, "`welcome` is also sent at line 4", "each content once"),
    ("a send line after a holding loop of the same content", """
        journey "t"
        stage a
          initial
          on x -> b
          hold after 2 days idle: every 1 day send newsletter "digest", 2 times, then -> b
        stage b
          send newsletter "digest" on entry
          final
        """, "C048", 7, 3, "also sent by the holding loop at line 5", "does not get it again"),
    ("zero duration", """
        journey "t"
        stage a
          initial
          send email "w" after 0 days
          on x -> b
        stage b
          final
        """, "C049", 4, 24, "must be positive, not `0 days`", "on entry"),
    ("negative duration", """
        journey "t"
        stage a
          initial
          after -1 days idle -> b
        stage b
          final
        """, "C049", 4, 9, "must be positive, not `-1 days`", None),
    ("absurd send delay", """
        journey "t"
        stage a
          initial
          send email "x" after 99999999999999 weeks
          on x -> b
        stage b
          final
        """, "C060", 4, 24, "`99999999999999 weeks` is longer than 100 years", "at most 36500 days (5214 weeks)"),
    ("absurd idle timer", """
        journey "t"
        stage a
          initial
          after 99999999999999 weeks idle -> b
        stage b
          final
        """, "C060", 4, 9, "longer than 100 years, the longest duration allowed", "write a shorter one"),
    ("just over a century", """
        journey "t"
        stage a
          initial
          after 36501 days in stage -> b
        stage b
          final
        """, "C060", 4, 9, "`36501 days` is longer than 100 years", "at most 36500 days"),
    ("absurd cap window", """
        journey "t"
        scoring
          email.opened +1 at most 2 per 5300 weeks
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C060", 3, 33, "`5300 weeks` is longer than 100 years", "5214 weeks"),
    ("absurd half-life", """
        journey "t"
        scoring
          email.opened +1
          decay half-life 876001 hours
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C060", 4, 19, "`876001 hours` is longer than 100 years", "876000 hours"),
    ("absurd frequency window", """
        journey "t"
        at most 3 messages per 99999999 minutes
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C060", 2, 24, "`99999999 minutes` is longer than 100 years", "52560000 minutes"),
    ("huge threshold", """
        journey "t"
        stage a
          initial
          when score >= 10000000000000000000000000000000000000000000000000 -> b
        stage b
          final
        """, "C061", 4, 3, "the number `10000000000000000000...` is too large", "up to 10^15"),
    ("huge compared value", """
        journey "t"
        stage a
          initial
          on x where account == 12345678901234567890 -> b
        stage b
          final
        """, "C061", 4, 14, "`12345678901234567890` is too large", "write it in double quotes"),
    ("unsendable content", """
        journey "t"
        stage a
          initial
          send email "late" after 10 days
          after 3 days in stage -> b
        stage b
          final
        """, "C050", 4, 3, "`late` is never sent", "no later than 3 days"),
    ("hold never starts", """
        journey "t"
        stage a
          initial
          after 3 days idle -> b
          hold after 5 days idle: every 1 day send email "n", 2 times, then -> b
        stage b
          final
        """, "C051", 5, 3, "never starts", "line 4"),
    ("no stages", """
        journey "t"
        """, "C052", 1, 1, "no stages", "initial"),
    ("initial and final", """
        journey "t"
        stage a
          initial
          final
        """, "C053", 2, 7, "both initial and final", "intended"),
    ("at most 0", """
        journey "t"
        scoring
          x +1 at most 0 per 1 day
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C056", 3, 3, "`at most 0`", "at least 1"),
    ("hold zero times", """
        journey "t"
        stage a
          initial
          on x -> b
          hold after 1 day idle: every 1 day send email "n", 0 times, then -> b
        stage b
          final
        """, "C056", 5, 3, "at least once", "3 times"),
    ("contradictory condition", """
        journey "t"
        stage a
          initial
          on x where plan == "a" and plan == "b" -> b
          on y -> b
        stage b
          final
        """, "C058", 4, 14, "can never be true", "did you mean `or`?"),
    ("stage whose ways out never fire", """
        journey "t"
        scoring
          x +1 at most 1 per 7 days
          decay half-life 7 days
        stage a
          initial
          on go -> b
        stage b
          when score >= 50 -> c
          on y where plan == "a" and plan == "b" -> c
        stage c
          final
        """, "C059", 8, 7, "no lead can ever leave stage `b`", "line 10: its condition can never be true"),
    # ---- limits: nesting (C062) ----------------------------------------------
    ("33 nested not", """
        journey "t"
        exit on x where """ + "not " * 33 + """plan == "a"
        stage a
          initial
          final
        """, "C062", 2, 17 + 32 * 4, "nested too deeply: more than 32 levels", "`not not x` is `x`"),
    ("33 nested groups", """
        journey "t"
        fit
          """ + "(a == 1 or " * 16 + "(b == 1 and " * 17 + "c == 1" + ")" * 33 + """ +5
        stage a
          initial
          final
        """, "C062", 3, 4 + 16 * 11 + 16 * 12, "nested too deeply", "`a and (b and c)` is `a and b and c`"),
    # ---- limits: what a lead remembers (C064) ----------------------------------
    ("more contents than a lead can remember",
     'journey "t"\nstage a\n  initial\n' + "".join(f'  send email "c{k}" on entry\n' for k in range(10_001))
     + "  final\n",
     "C064", 10_004, 3, "the journey sends 10,001 different contents; a journey may send at most 10,000",
     "split it into several journeys"),
    ("more delayed actions than a lead can remember",
     'journey "t"\nstage a\n  initial\n' + "".join(f'  tag "t{k}" after {k + 1} minutes\n' for k in range(10_001))
     + "  final\n",
     "C064", 10_004, 3, "stage `a` has 10,001 delayed internal actions; a stage may have at most 10,000",
     "take the actions on entry"),
    ("more had event types than a lead can remember",
     'journey "t"\nstage a\n  initial\n' + "".join(f"  on go where had e{k}.x -> b\n" for k in range(10_001))
     + "stage b\n  final\n",
     "C064", 10_004, 15, "`had` conditions name 10,001 event types; at most 10,000 may be named", "name fewer"),
    # ---- limits: lengths (C063) -----------------------------------------------
    ("stage label too long", 'journey "t"\nstage a "' + "L" * 501 + '"\n  initial\n  final\n',
     "C063", 2, 1, "a stage label is at most 500 characters long; this one has 501", "shorten it"),
    ("journey name too long", 'journey "' + "J" * 600 + '"\nstage a\n  initial\n  final\n',
     "C063", 1, 1, "a journey name is at most 500 characters long; this one has 600", "`#` comment"),
    ("event type too long", 'journey "t"\nstage a\n  initial\n  on e' + "v" * 100 + ' -> b\nstage b\n  final\n',
     "C063", 4, 3, "an event type is at most 100 characters long; this one has 101", "a short word"),
    ("stage id too long", 'journey "t"\nstage ' + "s" * 101 + '\n  initial\n  final\n',
     "C063", 2, 7, "a stage id is at most 100 characters long", "a short word"),
    ("compared text too long", 'journey "t"\nexit on x where path in ["/a", "' + "p" * 1001 + '"]\n'
     'stage a\n  initial\n  final\n',
     "C063", 2, 17, "a compared text is at most 1,000 characters long; this one has 1,001", "`starts with`"),
    ("content title too long", 'journey "t"\ncontent\n  ebook "guide" "' + "T" * 501 + '"\n'
     'stage a\n  initial\n  send ebook "guide" on entry\n  final\n',
     "C063", 3, 3, "a content title is at most 500 characters long", "shorten it"),
    ("sent content id too long", 'journey "t"\nstage a\n  initial\n  send ebook "' + "c" * 501 + '" on entry\n'
     '  final\n',
     "C063", 4, 3, "a content id is at most 500 characters long", "shorten it"),
    ("move to an unknown stage", """
        journey "t"
        moves
          stage nurture -> warn
        stage a
          initial
          on go -> warm
        stage warm
          final
        """, "C070", 3, 3, "unknown stage `warn`", "did you mean `warm`?"),
    ("move of a stage still there", """
        journey "t"
        moves
          stage a -> b
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C071", 3, 3, "still has it", "renamed or removed"),
    ("content moved twice", """
        journey "t"
        moves
          content "guide" -> "guide-2"
          content "guide" -> "guide-3"
        stage a
          initial
          send email "guide-2" on entry
          send email "guide-3" after 1 day
          on go -> b
        stage b
          final
        """, "C072", 4, 3, "moved twice", "line 3"),
    ("hours that are no time of day", """
        journey "t"
        send only weekdays 09:00-25:00
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C080", 2, 20, "`25:00` is not a time of day", "09:00-17:30"),
    ("time zone that is not one", """
        journey "t"
        time zone "Europe/Roma"
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C082", 2, 1, "`Europe/Roma` is not a time zone", "Europe/Rome"),
    ("window without hours", """
        journey "t"
        send only weekdays 09:00-09:00
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C083", 2, 1, "has no hours", "22:00-06:00"),
    ("quiet hours cover every window", """
        journey "t"
        send only weekends 10:00-12:00
        quiet hours sat-sun
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C084", 3, 1, "no send can ever go out", "quiet hours"),
    ("time zone twice", """
        journey "t"
        time zone "Europe/Rome"
        time zone from tz
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C085", 3, 1, "declared twice", "line 2"),
    ("date of an event never taken", """
        journey "t"
        stage a
          initial
          send email "r" 1 day before starts_at of webinar.registered
          on go -> b
        stage b
          final
        """, "C086", 4, 18, "no rule of this journey takes `webinar.registered`", "starts_at of lead"),
    ("timer since content never sent", """
        journey "t"
        stage a
          initial
          send email "welcome" on entry
          after 3 days since "welcom" -> b
        stage b
          final
        """, "C087", 5, 3, "no stage sends `welcom`", "did you mean `welcome`"),
    ("timers that never restart in a cycle", """
        journey "t"
        stage a
          initial
          on go -> b
        stage b
          after 1 hours in journey -> d
          on done -> c
        stage d
          after 1 hours in journey -> b
        stage c
          final
        """, "C089", 6, 3, "`b` and `d` send a lead back and forth", "count one of them `in stage`"),
    ("date field no event declares", f"""
        journey "t"
        catalogue "{ROOT / 'tests' / 'fixtures' / 'time.catalogue'}"
        enroll on webinar.registered
        stage a
          initial
          send email "r" 1 day before start_at of webinar.registered
          on webinar.registered -> b
        stage b
          final
        """, "C088", 6, 18, "no event declares the date `start_at`", "did you mean `starts_at`"),
    # ---- lead-wide rules (one lead score, one cap per lead across journeys) ----------------
    ("lead score without lead scoring", """
        journey "t"
        stage a
          initial
          when lead score >= 20 -> b
        stage b
          final
        """, "C110", 4, 3, "declares no `lead scoring`", 'include "lead.coltiva"'),
    ("priority twice", """
        journey "t"
        priority 2
        priority 3
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C111", 3, 1, "priority is declared twice", "first at line 2"),
    ("lead score decay twice", """
        journey "t"
        lead scoring
          email.clicked +3
          decay half-life 30 days
          decay half-life 60 days
        stage a
          initial
          on go -> b
        stage b
          final
        """, "C111", 5, 3, "decay is declared twice", "first at line 4"),
    ("lead score out of reach", """
        journey "t"
        lead scoring
          email.clicked +3 at most 1 per 1 day
          decay half-life 2 days
        stage a
          initial
          when lead score >= 100 -> b
          on go -> b
        stage b
          final
        """, "C112", 7, 3, "no lead score can go up to `lead score >= 100`", "`lead scoring` rules"),
    # ---- issue 12: goals, conditions on the lead, several event types, messages --------
    ("goal to exit", """
        journey "t"
        on lead.deleted -> exit
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C090", 2, 20, "a goal leads to a stage", "exit on lead.deleted"),
    ("goal takes a stage trigger first", """
        journey "t"
        on demo.requested -> b
        stage a
          initial
          on demo.requested where plan == "pro" -> c
        stage b
          final
        stage c
          final
        """, "C044", 5, 3, "the goal at line 2 (`-> b`) takes every such event first", "narrow the goal"),
    ("goal taken by an exit rule", """
        journey "t"
        exit on demo.requested
        on demo.requested -> b
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C044", 3, 1, "this goal never fires: `exit on demo.requested`", "narrow the rule"),
    ("goal overlaps a stage trigger", """
        journey "t"
        on demo.requested where size > 100 -> b
        stage a
          initial
          on demo.requested where plan == "pro" -> c
        stage b
          final
        stage c
          final
        """, "C045", 5, 3, "the goal at line 2 (to `b`) may match the same event; the goal wins",
     "exclude each other"),
    ("or between events: all taken", """
        journey "t"
        stage a
          initial
          on x -> b
          on y or x -> c
          on y -> b
        stage b
          final
        stage c
          final
        """, "C044", 6, 3, "line 5 already takes every `y`", None),
    ("non-breaking space", """
        journey "t"
        stage a
          initial
          on x ->\u00a0b
        stage b
          final
        """, "C091", 4, 10, "non-breaking space", "coltiva fmt"),
    ("hyphen in a stage id", """
        journey "t"
        stage shown-interest
          initial
        """, "C092", 2, 7, "`shown-interest` has a `-`", "shown_interest"),
    ("hyphen in a target", """
        journey "t"
        stage a
          initial
          on x -> shown-interest
        """, "C092", 4, 11, "has a `-`", "shown_interest"),
    ("slash comment", """
        journey "t"
        // the welcome series
        stage a
          initial
          final
        """, "C093", 2, 1, "comments start with `#`", "# the welcome series"),
    ("or in a scoring rule", """
        journey "t"
        scoring
          email.opened or email.clicked +1
        stage a
          initial
          final
        """, "C094", 3, 16, "one event type", "one line per event type"),
    ("and between events", """
        journey "t"
        stage a
          initial
          on demo.requested and meeting.booked -> b
        stage b
          final
        """, "C095", 4, 21, "`and` cannot join two event types", "write `or`"),
    ("score band", """
        journey "t"
        stage a
          initial
          when score >= 40 and score < 60 -> b
        stage b
          final
        """, "C096", 4, 20, "with one number", "write the higher one first"),
    ("points without a sign", """
        journey "t"
        scoring
          email.clicked 5
        stage a
          initial
          final
        """, "C097", 3, 17, "is read as `+5`", "`+5`"),
    ("lead field in fit", """
        journey "t"
        fit
          lead.company.size >= 200 +10
        stage a
          initial
          final
        """, "C098", 3, 3, "`lead.company.size` is `company.size` here", "without `lead.`"),
    ("lead field in lead scoring", """
        journey "t"
        lead scoring
          page.visited where lead.plan == "pro" +5
        stage a
          initial
          final
        """, "C025", 3, 22, "`lead.plan` is the lead's attribute", "journey's own `scoring`"),
    ("had in lead scoring", """
        journey "t"
        lead scoring
          page.visited where had demo.requested +5
        stage a
          initial
          final
        """, "C025", 3, 22, "not the events the lead had", "`had EVENT`"),
    ("send condition on event data", """
        journey "t"
        stage a
          initial
          send email "nudge" after 2 days unless activated == true
          on x -> b
        stage b
          final
        """, "C099", 4, 42, "`activated` is no attribute of the lead", "lead.activated"),
    ("a send line skipped on every later visit of a journey that re-enters", """
        journey "t"
        re-enter every time
        enroll on go
        stage a
          initial
          send email "welcome" on entry
          on x -> b
        stage b
          final
        """, "C048", 6, 3, "first visit only", "every visit"),
    ("every visit in a journey that never re-enters", """
        journey "t"
        stage a
          initial
          send email "welcome" on entry every visit
          on x -> b
        stage b
          final
        """, "C105", 4, 3, "changes nothing", "re-enter every time"),
    ("re-entry without enroll on", """
        journey "t"
        re-enter once per 30 days
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C106", 2, 1, "any event of a finished lead", "enroll on"),
    ("re-entry declared twice", """
        journey "t"
        enroll on go
        re-enter every time
        re-enter once
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C107", 4, 1, "`re-enter` is declared twice", "line 3"),
    ("catalogue named twice", """
        journey "t"
        catalogue "a.catalogue"
        catalogue "b.catalogue"
        stage a
          initial
          on x -> b
        stage b
          final
        """, "C107", 3, 1, "`catalogue` is declared twice", "line 2"),
    ("a delayed internal action after leads always left", """
        journey "t"
        stage a
          initial
          create task "call them" after 10 days
          after 7 days in stage -> b
        stage b
          final
        """, "C108", 4, 3, "this task is never done", "no later than 7 days"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_journey(case):
    name, text, code, line, column, message, hint = case
    loaded = load(text)
    found = [d for d in loaded.diagnostics if d.code == code]
    assert found, f"{name}: no {code}; got " + "; ".join(
        f"{d.code}@{d.span.line}:{d.span.column} {d.message}" for d in loaded.diagnostics)
    at = [d for d in found if (d.span.line, d.span.column) == (line, column)]
    assert at, f"{name}: {code} at " + ", ".join(f"{d.span.line}:{d.span.column}" for d in found)
    d = at[0]
    assert d.span.file == "t.journey"
    assert message in d.message
    if hint is not None:
        assert d.hint and hint in d.hint, d.hint
    assert d.hint, "every diagnostic says how to fix it"


def test_there_are_enough_cases():
    assert len(CASES) >= 45


def _all_codes() -> set[str]:
    codes = set()
    for path in (ROOT / "dsl").rglob("*.py"):
        codes |= set(re.findall(r'"(C0\d\d|C1[01]\d)"', path.read_text()))
    return codes


def test_every_code_is_produced_by_a_case():
    produced = {c[2] for c in CASES} | {"C020", "C021", "C022"}  # the include codes: tests below
    produced |= {"C100", "C101", "C102", "C103", "C104"}  # the catalogue codes: tests below
    produced |= {"C113"}  # journeys that disagree on lead-wide rules: tests/test_lead_wide.py
    assert _all_codes() <= produced, sorted(_all_codes() - produced)


def test_every_corpus_mistake_gets_its_code():
    """Each example of the mistakes corpus is explained by its own entry, not a neighbour's."""
    for (code, _, _), examples in MISTAKES.items():
        for example in examples:
            _, diagnostics = parse_text(example)
            assert diagnostics and diagnostics[0].code == code, (example, diagnostics)


# ---- includes ----------------------------------------------------------------

def test_missing_include(tmp_path):
    loaded = load('''
        journey "t"
        include "shared/nowhere.journey"
        stage a
          initial
        ''', tmp_path)
    [d] = [d for d in loaded.diagnostics if d.code == "C020"]
    assert (d.span.line, d.span.column) == (2, 1)
    assert "cannot read included file `shared/nowhere.journey`" in d.message
    assert "relative to" in d.hint
    assert not loaded.ok


def test_include_cycle(tmp_path):
    (tmp_path / "a.journey").write_text('include "b.journey"\nscoring\n  x +1\n')
    (tmp_path / "b.journey").write_text('include "a.journey"\nscoring\n  y +1\n')
    main = tmp_path / "main.journey"
    main.write_text('journey "t"\ninclude "a.journey"\nstage s\n  initial\n  on x -> e\nstage e\n  final\n')
    from dsl import load_journey

    loaded = load_journey(main)
    [d] = [d for d in loaded.diagnostics if d.code == "C021"]
    assert d.span.file.endswith("b.journey") and (d.span.line, d.span.column) == (1, 1)
    assert "include cycle" in d.message and "a.journey -> " in d.message
    assert not loaded.ok


def test_included_name_is_ignored_with_a_warning(tmp_path):
    (tmp_path / "shared.journey").write_text('journey "shared"\nscoring\n  x +1\n')
    loaded = load('''
        journey "t"
        include "shared.journey"
        stage a
          initial
          on x -> b
        stage b
          final
        ''', tmp_path)
    [d] = loaded.diagnostics
    assert d.code == "C022" and d.severity.value == "warning"
    assert d.span.file.endswith("shared.journey") and d.span.line == 1
    assert loaded.ok


# ---- one pass, errors and warnings -------------------------------------------

def test_many_syntax_errors_in_one_pass():
    loaded = load('''
        journey "t"
        stage a
          initial
          send ebook hidden on entry
          when score >= 10 b
          sned email "x" on entry
          on x -> b
        stage b
          final
        ''')
    assert [(d.code, d.span.line) for d in loaded.diagnostics] == [("C003", 4), ("C002", 5), ("C019", 6)]


def test_many_check_errors_in_one_pass():
    loaded = load('''
        journey "t"
        content
          email "welcome"
        stage a
          initial
          send email "welcom" on entry
          send email "welcome" after 0 days
          on x -> b
        stage b
          final
        stage b
          final
        ''')
    codes = sorted(d.code for d in loaded.diagnostics)
    assert codes == ["C031", "C034", "C049"]


def test_a_broken_line_in_a_block_does_not_cascade():
    loaded = load('''
        journey "t"
        scoring
          email.clicked
        stage a
          initial
        ''')
    assert [d.code for d in loaded.diagnostics] == ["C006"]


def test_errors_stop_a_journey_warnings_do_not():
    broken = load('''
        journey "t"
        stage a
          initial
          on x -> nowhere
        ''')
    assert not broken.ok
    warned = load('''
        journey "t"
        stage a
          initial
          on x -> b
          on x -> b
        stage b
          final
        ''')
    assert [d.code for d in warned.diagnostics] == ["C044"]
    assert warned.diagnostics[0].severity.value == "warning"
    assert warned.ok and warned.journey is not None


def test_legitimate_journeys_are_quiet():
    """Things that look odd but are right: no false alarm."""
    loaded = load('''
        journey "t"
        scoring
          page.visited where path starts with "/pricing" +15
          email.unsubscribed -50
        stage a "Ünaware — 未知"
          initial
          on page.visited where path == "/a" -> b
          on page.visited where path == "/b" -> c
          on form.submitted where plan in ["pro", "team"] -> b
          on form.submitted where plan not in ["pro", "team"] -> c
          when score >= 50 -> c
          when score >= 20 -> b
          after 30 days idle -> b
          after 60 days in stage -> exit
        stage b
          when score < 10 -> a
          on x -> c
          hold after 7 days idle: every 7 days send email "n", 2 times, then exit
        stage c
          final
        ''')
    assert loaded.diagnostics == []


# ---- rendering ----------------------------------------------------------------

def test_rendered_block_exactly():
    loaded = load('''
        journey "t"
        stage unaware
          initial
          on form.submitted -> shown_intrest
        stage shown_interest
          final
        ''')
    [d] = loaded.diagnostics
    assert render_plain(d, loaded.sources) == (
        "t.journey:4:24: error C030: unknown stage `shown_intrest`\n"
        " 4 |   on form.submitted -> shown_intrest\n"
        "   |                        ^^^^^^^^^^^^^\n"
        "  = help: did you mean `shown_interest`?"
    )


def test_caret_follows_tabs():
    loaded = load('journey "t"\nstage a\n\tinitial\n\ton x ->  nowhere\n')
    [d] = [d for d in loaded.diagnostics if d.code == "C030"]
    lines = render_plain(d, loaded.sources).split("\n")
    assert lines[2] == " " * 3 + "| \t" + " " * 9 + "^" * 7


# ---- indentation with tabs ------------------------------------------------------

def test_mixed_tabs_point_at_the_inconsistent_line():
    """`  \t` is 10 columns for the parser (a tab is 8 wherever it stands): line 4's 8 spaces match no block."""
    text = 'journey "T"\nstage a\n  \tinitial\n        on go -> b\nstage b\n        final\n'
    loaded = load_text(text, "t.journey")
    [d] = loaded.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("C009", 4, 9)
    assert (d.span.end_line, d.span.end_column) == (4, 19)  # `on go -> b`, not the indentation
    assert "(8 columns) matches no enclosing block: line 3 is indented by 10" in d.message
    assert "mixes tabs and spaces: use spaces only" in d.hint and "a tab counts as 8 columns" in d.hint
    lines = render_plain(d, loaded.sources).split("\n")
    assert lines[2] == "   |         ^^^^^^^^^^"


def test_dedent_without_tabs_does_not_mention_tabs():
    loaded = load_text('journey "t"\nstage a\n    initial\n    on x -> b\n  on y -> b\n', "t.journey")
    [d] = loaded.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("C009", 5, 3)
    assert "tab" not in d.hint and "same amount" in d.hint


def test_tab_indented_deeper_mentions_tabs():
    loaded = load_text('journey "t"\nstage a\n  initial\n\ton x -> b\nstage b\n  final\n', "t.journey")
    [d] = loaded.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("C018", 4, 2)
    assert "indented more than the line above" in d.message
    assert "a tab counts as 8 columns" in d.hint


def test_tabs_alone_are_fine():
    loaded = load_text('journey "t"\nstage a\n\tinitial\n\ton x -> b\nstage b\n\tfinal\n', "t.journey")
    assert loaded.diagnostics == []


# ---- shadowing by conditions: severities ------------------------------------------

def test_implied_condition_to_the_same_stage_is_a_warning():
    loaded = load('''
        journey "t"
        stage a
          initial
          on form.submitted where plan == "pro" -> b
          on form.submitted where plan == "pro" and seats > 5 -> b
        stage b
          final
        ''')
    [d] = loaded.diagnostics
    assert (d.code, d.severity.value, d.span.line) == ("C044", "warning", 5)
    assert loaded.ok


def test_a_stage_reached_only_by_a_shadowed_trigger_is_unreachable():
    """The graph checks see the shadowed trigger as dead too: nothing else leads to `c`."""
    loaded = load('''
        journey "t"
        stage a
          initial
          on x -> b
        stage b
          on y where n > 5 -> d
          on y where n > 10 and n < 20 -> c
        stage c
          on z -> d
        stage d
          final
        ''')
    assert [(d.code, d.span.line) for d in loaded.diagnostics] == [("C044", 7), ("C040", 8)]
    assert loaded.diagnostics[0].severity.value == "error"
    assert "never fires: every `y` it matches also matches line 6" in loaded.diagnostics[0].message


def test_specific_first_then_general_is_not_c044():
    loaded = load('''
        journey "t"
        stage a
          initial
          on form.submitted where plan == "pro" and seats > 5 -> c
          on form.submitted where plan == "pro" -> b
          on form.submitted where plan in ["team", "pro"] -> b
          on form.submitted -> b
        stage b
          final
        stage c
          final
        ''')
    found = [(d.code, d.span.line) for d in loaded.diagnostics]
    assert ("C045", 5) in found and all(code != "C044" for code, _ in found)


# ---- the CLI contract of `coltiva check` ---------------------------------------

def _check(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "coltiva.cli", "check", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.fixture
def files(tmp_path):
    clean = tmp_path / "clean.journey"
    clean.write_text('journey "t"\nstage a\n  initial\n  on x -> b\nstage b\n  final\n')
    warned = tmp_path / "warned.journey"
    warned.write_text('journey "t"\nstage a\n  initial\n  on x -> b\n  on x -> b\nstage b\n  final\n')
    broken = tmp_path / "broken.journey"
    broken.write_text('journey "t"\nstage a\n  initial\n  on x -> shown_intrest\nstage shown_interest\n  final\n')
    return {"clean": clean, "warned": warned, "broken": broken, "missing": tmp_path / "missing.journey"}


def test_cli_exit_codes(files):
    assert _check(files["clean"]).returncode == 0
    assert _check(files["warned"]).returncode == 0
    assert _check(files["broken"]).returncode == 1
    assert _check(files["clean"], files["broken"]).returncode == 1
    missing = _check(files["missing"])
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_json(files):
    result = _check("--format", "json", files["broken"], files["warned"])
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["errors"] == 1 and report["warnings"] == 1
    [d] = report["files"][0]["diagnostics"]
    assert {k: d[k] for k in ("code", "severity", "line", "column")} == {
        "code": "C030", "severity": "error", "line": 4, "column": 11}
    assert d["hint"] == "did you mean `shown_interest`?"
    assert report["files"][1]["diagnostics"][0]["severity"] == "warning"


def test_cli_plain_text_when_piped(files):
    result = _check(files["broken"])
    assert "\x1b[" not in result.stdout
    assert "error C030: unknown stage `shown_intrest`" in result.stdout
    assert "  on x -> shown_intrest" in result.stdout
    assert " |           ^^^^^^^^^^^^^" in result.stdout
    assert "= help: did you mean `shown_interest`?" in result.stdout


# ---- the event catalogue ---------------------------------------------------------

CATALOGUE_JOURNEY = """journey "t"
catalogue "events.catalogue"
exit on email.unsubscribe
enroll on form.submitted where from == "demo"
stage a
  initial
  on x.y -> b
stage b
  final
"""


@pytest.mark.parametrize("catalogue, code, line, column, message, hint", [
    ("email.unsubscribed\nform.submitted form\nx.y\n", "C100", 3, 1,
     "event type `email.unsubscribe` is not in the event catalogue", "did you mean `email.unsubscribed`?"),
    ("email.unsubscribed\nform.submitted form\nx.y\n", "C101", 4, 32,
     "`form.submitted` has no data field `from`", "did you mean `form`?"),
    ("email.unsubscribed\nform.submitted form\nx.y\nbad/type\n", "C102", 4, 1,
     "`bad/type` is not an event type", "separated by spaces"),
    ("email.unsubscribed\nform.submitted form\nx.y\nx.y z\n", "C103", 4, 1,
     "`x.y` is listed twice", "first at line 3"),
    (None, "C104", 2, 1, "cannot read the event catalogue", "relative to the journey's file"),
])
def test_catalogue_messages(tmp_path, catalogue, code, line, column, message, hint):
    if catalogue is not None:
        (tmp_path / "events.catalogue").write_text(catalogue)
    (tmp_path / "t.journey").write_text(CATALOGUE_JOURNEY)
    from dsl.loader import load_journey

    found = [d for d in load_journey(tmp_path / "t.journey").diagnostics if d.code == code]
    assert found, code
    d = found[0]
    assert (d.span.line, d.span.column) == (line, column) and message in d.message and hint in d.hint, d
