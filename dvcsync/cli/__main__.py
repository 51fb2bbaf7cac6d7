from dvcsync.cli import main

main()
