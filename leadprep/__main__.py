from leadprep.cli import main

main()
