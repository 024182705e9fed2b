"""MkDocs hook (mkdocs.yml `hooks:`): each page's language switcher and language.

The guide is English in docs/ and Brazilian Portuguese at the same path under docs/pt/
(the reference pages are English only). Material's switcher is `extra.alternate`: one
list for the whole site, so on its own every page could only link to a language's home.
Before each page is rendered this hook points the list at that page's own translation
(or at the language's home when the page has none) and sets the theme language, so a
Portuguese page says `<html lang="pt-BR">` and shows Material's labels in Portuguese.

Links are site-root paths with no leading slash ("pt/workers/"): MkDocs' `url` filter
makes them relative to the page ("../pt/workers/"), so they keep working when the site
is served under a sub-path, as a GitHub Pages project site is.
"""

from dataclasses import dataclass
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page


@dataclass(frozen=True)
class Language:
    folder: str  # under docs/, "" for the default language
    theme: str  # Material's `theme.language`
    name: str  # in the switcher
    hreflang: str


LANGUAGES = [
    Language("", "en", "English", "en"),
    Language("pt/", "pt-BR", "Português (Brasil)", "pt"),
]

# Page source path ("pt/workers.md") -> its URL from the site root ("pt/workers/").
_urls: dict[str, str] = {}


def _link(url: str) -> str:
    return url or "./"  # the site's home page has the empty URL


def _homes() -> list[dict[str, str]]:
    return [
        {"name": lang.name, "link": _link(lang.folder), "lang": lang.hreflang} for lang in LANGUAGES
    ]


def _language_of(src_uri: str) -> tuple[Language, str]:
    """The page's language, and its path inside that language's folder."""
    for lang in LANGUAGES:
        if lang.folder and src_uri.startswith(lang.folder):
            return lang, src_uri.removeprefix(lang.folder)
    return LANGUAGES[0], src_uri


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    # Pages that are not documents (the 404 page) keep the languages' homes.
    config.extra["alternate"] = _homes()
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    _urls.clear()
    _urls.update({file.src_uri: file.url for file in files.documentation_pages()})
    return files


def on_page_context(
    context: dict[str, Any], page: Page, config: MkDocsConfig, nav: Navigation
) -> dict[str, Any]:
    language, path = _language_of(page.file.src_uri)
    config.extra["alternate"] = [
        {
            "name": lang.name,
            "link": _link(_urls.get(lang.folder + path, lang.folder)),
            "lang": lang.hreflang,
        }
        for lang in LANGUAGES
    ]
    config.theme["language"] = language.theme
    return context


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    # Pages are rendered one at a time: put the site-wide values back after each.
    config.extra["alternate"] = _homes()
    config.theme["language"] = LANGUAGES[0].theme
    return output
