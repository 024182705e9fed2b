{#- Wrapped so a long name or description stays under the line limit; no ": " when the description is empty. -#}
{%- set description = cookiecutter.description | trim -%}
"""{{ ((cookiecutter.project_name | trim) ~ (": " ~ description if description else "")) | wordwrap(94) }}"""
