from tidings.bench.cli import main

main()
