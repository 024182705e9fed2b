"""Validate the answers before cookiecutter writes anything.

The rules are copier's: hooks/answer_checks.jinja (with hooks/cron_error.jinja and the
names in hooks/reserved_names.json), which copier.yml's validators include too. Cookiecutter
renders this file, so the checks run here, at render time, in cookiecutter's Jinja
(local_extensions.py gives it the template's loader and the three filters copier has that
it lacks); tests/test_answers.py checks that both tools refuse the same answers. A failure
is one line per problem on stderr: local_extensions.py keeps cookiecutter from adding its
traceback.
"""

import json
import sys

# As JSON (with quotes and backslashes escaped): an answer that holds them reaches the
# message intact instead of breaking this file's syntax.
PROBLEMS: list[str] = json.loads(
    r"""
{%- set project_name = cookiecutter.project_name -%}
{%- set project_slug = cookiecutter.project_slug -%}
{%- set package_name = cookiecutter.package_name -%}
{%- set description = cookiecutter.description -%}
{%- set author_name = cookiecutter.author_name -%}
{%- set author_email = cookiecutter.author_email -%}
{%- set python_version = cookiecutter.python_version -%}
{%- set weekly_reset_schedule = cookiecutter.weekly_reset_schedule -%}
{%- set auth_provider = cookiecutter.auth_provider -%}
{%- set license = cookiecutter.license -%}
{%- set examples = cookiecutter.examples -%}
{%- set problems = [] -%}
{%- for question in cookiecutter if not question.startswith('_') -%}
{%- set found %}{% include 'hooks/answer_checks.jinja' %}{% endset -%}
{%- if found.strip() %}{% set _ = problems.append(found.strip()) %}{% endif -%}
{%- endfor -%}
{{ problems | tojson }}"""
)


def main() -> int:
    for line in PROBLEMS:
        print(f"error: {line}", file=sys.stderr)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
