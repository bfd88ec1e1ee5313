from tap_disruptive.emulator.cli import main

main()
