"""What the project's local servers (the emulator, the Data Connector receiver) share: their log on
stderr with one line per request, and running one as a child process that says where it listens."""
