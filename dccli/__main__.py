from dccli.cli.main import main

main()
