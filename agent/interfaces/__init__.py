"""The ways in: the `atelier` command line (cli.py, one module per command group in
commands/), the web page (web.py) and LangChain tools for other agents (tools.py)."""
