"""Write examples/people.pkl: the classic "store records with pickle" example.

This is the pattern from many Python persistence tutorials: a dict of
records keyed by first name, appended to a file with pickle.dump.  The
converter's examples and tests use the file it makes as a typical legacy
pickle (run with Python 3.8+ it is a protocol-4 pickle).
"""
import os
import pickle

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "people.pkl")


def store_data():
    """Build the two records and append them to people.pkl."""
    omkar = {'key': 'Omkar', 'name': 'Omkar Pathak', 'age': 21, 'pay': 40000}
    jagdish = {'key': 'Jagdish', 'name': 'Jagdish Pathak', 'age': 50, 'pay': 50000}

    db = {}
    db['Omkar'] = omkar
    db['Jagdish'] = jagdish

    # The classic code opens the file in append mode ('ab'), so every run
    # adds one more pickle to the end of the file.  Start from no file so
    # that people.pkl always holds exactly one pickle.
    if os.path.exists(PATH):
        os.remove(PATH)
    dbfile = open(PATH, 'ab')
    pickle.dump(db, dbfile)
    dbfile.close()


if __name__ == '__main__':
    store_data()
