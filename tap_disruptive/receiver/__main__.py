from tap_disruptive.receiver.cli import main

main()
