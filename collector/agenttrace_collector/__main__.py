from agenttrace.cli import main

main(["collector", *__import__("sys").argv[1:]])
