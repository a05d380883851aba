from magtask.cli import main

main()
