from readlit.bench.cli import main

main()
