"""What a failed smoke says is missing, read from its output with each analyzer's patterns."""
from __future__ import annotations

from microprune.verify import missing_from_output
from microprune_analyzers.node import NodeAnalyzer
from microprune_analyzers.python import PythonAnalyzer

NODE = NodeAnalyzer.failure_patterns
PYTHON = PythonAnalyzer.failure_patterns


def test_node_messages_name_the_module_once_in_order() -> None:
    text = ("Error: Cannot find module 'lodash/chunk'\nRequire stack:\n- /app/main.js\n"
            "Error: Cannot find module 'lodash/chunk'\n"
            "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /app/x.mjs\n"
            "Error: ENOENT: no such file or directory, open '/out/node_modules/a/b.json'\n")
    assert missing_from_output(text, NODE) == ["lodash/chunk", "zod", "/out/node_modules/a/b.json"]


def test_node_libraries_that_say_it_in_their_own_words() -> None:
    pino = ('/out/node_modules/pino/lib/transport.js:160\n'
            '    throw new Error(`unable to determine transport target for "${origin}"`)\n'
            '          ^\n\nError: unable to determine transport target for "pino-pretty"\n')
    assert missing_from_output(pino, NODE) == ["pino-pretty"]     # not the source line's ${origin}
    sequelize = "Error: Please install pg package manually\n    at ConnectionManager._loadDialectModule"
    assert missing_from_output(sequelize, NODE) == ["pg"]
    scoped = "Error: Please install @scope/driver package manually"
    assert missing_from_output(scoped, NODE) == ["@scope/driver"]


def test_python_messages() -> None:
    text = ("ModuleNotFoundError: No module named 'jinja2.nativetypes'\n"
            "importlib.metadata.PackageNotFoundError: No package metadata was found for flask\n")
    found = missing_from_output(text, PYTHON)
    assert "jinja2.nativetypes" in found and "flask" in found, found


def test_a_passing_looking_output_names_nothing() -> None:
    assert missing_from_output("all good\n", NODE) == [] and missing_from_output("", PYTHON) == []


def test_an_html_error_page_is_read_unescaped() -> None:
    """Express renders a failed require into its HTML error page, quotes escaped."""
    page = "<pre>Error: Cannot find module &#39;pug&#39;<br>Require stack:<br> &nbsp; &nbsp;at Function._resolveFilename"
    assert missing_from_output(page, NODE) == ["pug"]


def test_native_code_names_the_file_it_could_not_read() -> None:
    requests = ("OSError: Could not find a suitable TLS CA certificate bundle, invalid path: "
                "/out/site-packages/certifi/cacert.pem\n")
    lxml = ("OSError: Error reading file '/out/site-packages/lxml/isoschematron/resources/xsl/XSD2Schtrn.xsl': "
            "failed to load external entity\n")
    assert missing_from_output(requests + lxml, PYTHON) == [
        "/out/site-packages/certifi/cacert.pem", "/out/site-packages/lxml/isoschematron/resources/xsl/XSD2Schtrn.xsl"]
