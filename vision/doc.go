package vision
