from animelab.cli import main

main()
